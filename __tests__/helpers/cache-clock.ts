/** Cache options that turn any warning (a cache the test expected to use) into a failure. */
export const quiet = {
  onWarning: (m: string) => {
    throw new Error(m);
  },
};

/** A clock 10 s ahead: files the test just wrote count as old enough to be trusted (no racy window). */
export const later = () => BigInt(Date.now()) * 1_000_000n + 10_000_000_000n;
