/**
 * Pure: text that came out of strangers' Makefiles made safe to put in XML 1.0. Whatever the
 * text holds, the result parses, and reads back as the text less what XML cannot carry.
 */

// XML 1.0's Char production: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000–U+10FFFF.
// With the `u` flag a lone surrogate is one code point outside every range, so it goes too.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Removes every character XML 1.0 cannot hold (C0 controls but tab/LF/CR, U+FFFE/FFFF, lone surrogates). */
export function xmlChars(text: string): string {
  return text.replace(NOT_XML_CHAR, '');
}

/** Element content: `&`, `<`, `>` escaped (`>` too, so `]]>` can never appear). */
export function xmlText(text: string): string {
  return xmlChars(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An attribute value between double quotes; tab, LF and CR as references so a parser keeps them. */
export function xmlAttr(text: string): string {
  return xmlText(text).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\t/g, '&#9;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;');
}

/** A CDATA section (several, when the text holds `]]>`): log excerpts keep their look in raw XML. */
export function xmlCdata(text: string): string {
  return `<![CDATA[${xmlChars(text).replace(/]]>/g, ']]]]><![CDATA[>')}]]>`;
}
