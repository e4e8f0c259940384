import { htmlText } from '../../report/html-text.js';
import { cspHash, pageBase } from './page-security.js';

/**
 * Pure: the dashboard's login page. A browser cannot send `Authorization: Bearer` on a plain
 * page load, so a person pastes their token here once: the form posts it
 * (application/x-www-form-urlencoded, field `token`) to `<base>/login`, and kfarm serve answers
 * with the cookie `kfarm_token` (HttpOnly, SameSite=Strict, Secure behind TLS) and a redirect to
 * the dashboard. No script; the one inline style is allowed by hash in LOGIN_CSP.
 */

const LOGIN_CSS = `
:root { font: 16px/1.45 system-ui, sans-serif; color: #1b1b1b; background: #fff; }
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 1.5rem 1rem; max-width: 26rem; }
h1 { font-size: 1.3rem; margin: 0 0 1rem; }
label { display: block; margin: 0 0 .35rem; }
input { font: inherit; width: 100%; padding: .45rem .5rem; border: 1px solid #888; border-radius: 4px; }
button { font: inherit; margin-top: .75rem; padding: .4rem 1.2rem; }
.error { background: #fde2e0; border: 1px solid #e0a09a; padding: .5rem .75rem; border-radius: 6px; overflow-wrap: anywhere; }
.meta { color: #555; }
`;

/** The Content-Security-Policy header value to send with the login page. */
export const LOGIN_CSP = ["default-src 'none'", `style-src ${cspHash(LOGIN_CSS)}`, "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'"].join('; ');

export interface RenderLoginOptions {
  /** the path kfarm serve is mounted under behind a proxy; default '' */
  base?: string;
  /** why the last attempt failed (e.g. 'unknown token'), shown above the form */
  error?: string;
}

export function renderLogin(options: RenderLoginOptions = {}): string {
  const base = pageBase(options.base);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>kfarm: log in</title>
<style>${LOGIN_CSS}</style>
</head>
<body>
<h1>kfarm dashboard</h1>
${options.error ? `<p class="error" role="alert">${htmlText(options.error)}</p>` : ''}
<form method="post" action="${htmlText(`${base}/login`)}">
<label for="token">API token (read scope is enough)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required spellcheck="false">
<button type="submit">Log in</button>
</form>
<p class="meta">The token is kept in an HttpOnly cookie for this site only. <code>kfarm serve</code>'s admin makes tokens.</p>
</body>
</html>
`;
}
