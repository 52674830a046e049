export * from './profile.ts';
export { sha256OfFile } from './hash.ts';
