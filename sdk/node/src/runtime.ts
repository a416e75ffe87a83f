// What the host runtime offers, looked up when first needed and never through a static import of a
// `node:` module: the package loads on Node, Deno, Bun and edge runtimes (Next.js edge, Cloudflare
// Workers), where `node:crypto` or `node:async_hooks` may not exist.

/** The part of `AsyncLocalStorage` the trace scope uses. */
export interface ScopeStorage<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

const g = globalThis as any;

/**
 * A Node built-in module, or `undefined`: through `process.getBuiltinModule` (Node >= 20.16 and
 * 22.3, Deno, Bun), else `require` (the CommonJS build on any Node). Never throws.
 */
export function builtin(name: string): any {
  try {
    const get = g.process?.getBuiltinModule;
    if (typeof get === 'function') {
      const m = get.call(g.process, name);
      if (m) return m;
    }
  } catch {
    // not available here
  }
  try {
    // Only the CommonJS build has `require`; `typeof` of an undeclared name does not throw.
    if (typeof require === 'function') return require(name);
  } catch {
    // not available here
  }
  return undefined;
}

/**
 * A process-wide singleton, kept on `globalThis` under a registered symbol: an app that loads
 * both the ES-module and the CommonJS build (two copies of this code) still has one queue and one
 * trace scope.
 */
export function shared<T>(name: string, make: () => T): T {
  // Versioned: another version of the package, with other internals, keeps its own.
  const key = Symbol.for('tokentally.shared.v2');
  const store: Record<string, unknown> = g[key] ?? (g[key] = {});
  if (!(name in store)) store[name] = make();
  return store[name] as T;
}

/** UTF-8 length of a string, without allocating (no TextEncoder or Buffer needed). */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) bytes += c >= 0x800 && (c < 0xd800 || c > 0xdfff) ? 2 : 1;
  }
  return bytes;
}

/** An environment variable, or `undefined` (also where there is no `process`). */
export function env(name: string): string | undefined {
  try {
    const v = g.process?.env?.[name];
    if (typeof v === 'string') return v;
  } catch {
    // no environment
  }
  try {
    const v = g.Deno?.env?.get?.(name);
    if (typeof v === 'string') return v;
  } catch {
    // Deno without --allow-env
  }
  return undefined;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

let makeUuid: (() => string) | undefined;

/**
 * A random (version 4) UUID: from `node:crypto` where it exists (the fastest: a cached entropy
 * pool), else Web Crypto, else `Math.random` as a last resort.
 */
export function uuid(): string {
  if (!makeUuid) {
    const nodeCrypto = builtin('node:crypto');
    const c = g.crypto;
    if (typeof nodeCrypto?.randomUUID === 'function') makeUuid = () => nodeCrypto.randomUUID();
    else if (typeof c?.randomUUID === 'function') makeUuid = () => c.randomUUID();
    else makeUuid = fallbackUuid;
  }
  return makeUuid();
}

function fallbackUuid(): string {
  const c = g.crypto;
  const b = new Uint8Array(16);
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return hex(b);
}

/** Milliseconds from a monotonic clock where there is one. */
export function now(): number {
  return typeof g.performance?.now === 'function' ? g.performance.now() : Date.now();
}

/**
 * Stand-in where no `AsyncLocalStorage` exists: the scope holds while `fn` runs synchronously,
 * which covers a call started directly inside `withTrace(() => client.x.create(...))`, but not
 * calls after an `await`.
 */
class SyncStorage<T> implements ScopeStorage<T> {
  private current: T | undefined;
  getStore() {
    return this.current;
  }
  run<R>(store: T, fn: () => R): R {
    const prev = this.current;
    this.current = store;
    try {
      return fn();
    } finally {
      this.current = prev;
    }
  }
}

function findAsyncLocalStorage(): (new () => ScopeStorage<any>) | undefined {
  if (typeof g.AsyncLocalStorage === 'function') return g.AsyncLocalStorage; // Vercel edge
  const hooks = builtin('node:async_hooks');
  return typeof hooks?.AsyncLocalStorage === 'function' ? hooks.AsyncLocalStorage : undefined;
}

/**
 * The scope storage: `AsyncLocalStorage` where the runtime has it. On an ES-module Node without
 * `process.getBuiltinModule` (before 20.16) it arrives a moment after load, through a dynamic
 * import; scopes opened before that fall back to the synchronous stand-in.
 */
export function scopeStorage<T>(): ScopeStorage<T> {
  let impl: ScopeStorage<T>;
  const ALS = findAsyncLocalStorage();
  if (ALS) return new ALS();
  impl = new SyncStorage<T>();
  if (typeof g.process?.versions?.node === 'string' && typeof require !== 'function') {
    // Node before 20.16 as an ES module: no getBuiltinModule, no require. The specifier is built
    // at run time so that bundlers for edge runtimes neither resolve nor reject it.
    const specifier = ['node', 'async_hooks'].join(':');
    import(/* webpackIgnore: true */ specifier)
      .then((m: any) => {
        if (typeof m?.AsyncLocalStorage === 'function') impl = new m.AsyncLocalStorage();
      })
      .catch(() => undefined);
  }
  return {
    getStore: () => impl.getStore(),
    run: (store, fn) => impl.run(store, fn),
  };
}

/** Registers `fn` to run when the process is about to exit with nothing left to do. */
export function onBeforeExit(fn: () => void) {
  try {
    if (typeof g.process?.on === 'function') g.process.on('beforeExit', fn);
  } catch {
    // no process events here
  }
}
