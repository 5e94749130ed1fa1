import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/**
 * Reads the admin secret from Secrets Manager once per Lambda container; a failed read
 * is retried on the next request rather than cached.
 */
export function adminSecretFromSecretsManager(secretId: string, client = new SecretsManagerClient({})): () => Promise<string> {
  let secret: Promise<string> | undefined;
  return () => {
    secret ??= client.send(new GetSecretValueCommand({ SecretId: secretId })).then(
      (output) => {
        if (!output.SecretString) throw new Error('The admin secret is empty.');
        return output.SecretString;
      },
      (error: unknown) => {
        secret = undefined;
        throw error;
      },
    );
    return secret;
  };
}
