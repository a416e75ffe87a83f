// The trace scope: which withTrace block (trace id, route tag, tags) the current async code runs in.
import { scopeStorage, shared, uuid, type ScopeStorage } from './runtime.js';
import { enqueueTrace, transport } from './transport.js';

/** A flat map of string tags; `userId` is the end user. */
export type Tags = Record<string, string>;

/** Tag values as callers pass them; they become strings, and null/undefined are left out. */
export type TagInput = Record<string, string | number | boolean | null | undefined>;

export interface TraceOptions {
  /** The request's route, e.g. `POST /api/chat`. */
  routeTag?: string;
  /** Tags for every event in the block (`userId`, `plan`, `org`, ...). Values become strings. */
  tags?: TagInput;
}

export interface TraceScope {
  /** Absent inside a `withTags` block that is in no trace. */
  traceId?: string;
  routeTag?: string;
  tags: Tags;
  /** Whether the calls in this scope are recorded (sampling, `disabled`). */
  recorded: boolean;
}

const storage: ScopeStorage<TraceScope> = shared('scope', () => scopeStorage<TraceScope>());

/** The innermost active scope, if any. */
export function currentTrace(): TraceScope | undefined {
  try {
    return storage.getStore();
  } catch {
    return undefined;
  }
}

function cleanTags(tags: TagInput | undefined): Tags {
  const out: Tags = {};
  for (const [k, v] of Object.entries(tags ?? {})) {
    if (v !== undefined && v !== null) out[k] = String(v);
  }
  return out;
}

/**
 * Runs `fn` as one trace: every LLM call and `log()` inside carries the trace id, route tag and
 * tags. A nested withTrace is its own trace with the outer tags merged under its own. Returns
 * `fn`'s value and rethrows its error (the trace is then marked `error`).
 */
export async function withTrace<T>(fn: () => T | Promise<T>, options: TraceOptions = {}): Promise<T> {
  let scope: TraceScope | undefined;
  try {
    const parent = currentTrace();
    scope = {
      traceId: uuid(),
      routeTag: options.routeTag ?? parent?.routeTag,
      tags: { ...parent?.tags, ...cleanTags(options.tags) },
      recorded: transport.sample(),
    };
  } catch {
    scope = undefined;
  }
  if (!scope) return await fn();
  const startedAt = new Date();
  let status: 'ok' | 'error' = 'ok';
  try {
    return await storage.run(scope, fn);
  } catch (err) {
    status = 'error';
    throw err;
  } finally {
    if (scope.recorded) {
      enqueueTrace({
        id: scope.traceId,
        route_tag: scope.routeTag,
        tags: scope.tags,
        started_at: startedAt.toISOString(),
        ended_at: new Date().toISOString(),
        status,
      });
    }
  }
}

/**
 * Runs `fn` with `tags` merged over the current ones (same trace, no new trace record): for a
 * call or a step that belongs to a different feature, org or experiment arm than its request.
 * Returns what `fn` returns.
 */
export function withTags<T>(tags: TagInput, fn: () => T): T {
  let scope: TraceScope | undefined;
  try {
    const parent = currentTrace();
    scope = {
      traceId: parent?.traceId,
      routeTag: parent?.routeTag,
      tags: { ...parent?.tags, ...cleanTags(tags) },
      recorded: parent ? parent.recorded : transport.sample(),
    };
  } catch {
    scope = undefined;
  }
  return scope ? storage.run(scope, fn) : fn();
}
