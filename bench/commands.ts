/** A well-formed CRD command with a unique code per participant index. */
export function crdCommandFor(index: number): string {
  const code = `4/0Aanbench${String(index).padStart(8, '0')}xxxxxxxxxxxxxxxx`;
  return `DISPLAY= /opt/google/chrome-remote-desktop/start-host --code="${code}" --redirect-url="https://remotedesktop.google.com/_/oauthredirect" --name=$(hostname)`;
}
