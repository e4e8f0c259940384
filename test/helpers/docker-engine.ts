import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';

/**
 * Restarts the local Docker engine the way an operator or a crash would, for fault tests:
 * `systemctl restart docker` where systemd runs it, else SIGTERM to dockerd and a new detached
 * dockerd (as scripts/setup.sh starts it). Resolves once `docker info` answers again.
 */
export async function restartDockerEngine(downForMs = 2000): Promise<void> {
  const systemd = existsSync('/run/systemd/system') && readFileSync('/proc/1/comm', 'utf8').trim() === 'systemd';
  if (systemd) {
    await execa('systemctl', ['stop', 'docker', 'docker.socket']);
    await new Promise((r) => setTimeout(r, downForMs));
    await execa('systemctl', ['start', 'docker']);
  } else {
    await execa('pkill', ['-TERM', '-x', 'dockerd'], { reject: false });
    for (let i = 0; i < 60 && (await execa('pgrep', ['-x', 'dockerd'], { reject: false })).exitCode === 0; i++) {
      await new Promise((r) => setTimeout(r, 500));
    }
    await new Promise((r) => setTimeout(r, downForMs));
    await execa('bash', ['-c', 'setsid nohup dockerd >>/var/log/kfarm-dockerd.log 2>&1 </dev/null & disown']);
  }
  for (let i = 0; i < 60; i++) {
    if ((await execa('docker', ['info'], { reject: false, timeout: 5000 })).exitCode === 0) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error('the Docker engine did not come back within 60 s (see /var/log/kfarm-dockerd.log)');
}
