// Module hooks for the edge-runtime test: `node:crypto` and `node:async_hooks` do not exist, as on
// Next.js edge or Cloudflare Workers without compatibility flags.
const DENIED = new Set(['node:crypto', 'crypto', 'node:async_hooks', 'async_hooks']);

export async function resolve(specifier, context, next) {
  if (DENIED.has(specifier)) throw new Error(`Cannot find module '${specifier}': not available on this (simulated edge) runtime`);
  return next(specifier, context);
}
