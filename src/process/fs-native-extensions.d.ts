// The package ships no types; only what kfarm uses is declared.
declare module 'fs-native-extensions' {
  /** An exclusive (or shared) lock on the file behind fd; false when another open file holds it. */
  export function tryLock(fd: number, options?: { shared?: boolean }): boolean;
  export function unlock(fd: number): void;
  const fsx: { tryLock: typeof tryLock; unlock: typeof unlock };
  export default fsx;
}
