export default async function globalTeardown() {
  await globalThis.__LABLINK_POSTGRES__?.stop();
}
