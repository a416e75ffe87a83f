// The trace scope: which withTrace block (trace id, route tag, tags) the current async code runs in.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { enqueueTrace } from './transport.js';

/** A flat map of string tags; `userId` is the end user. */
export type Tags = Record<string, string>;

export interface TraceOptions {
  /** The request's route, e.g. `POST /api/chat`. */
  routeTag?: string;
  /** Tags for every event in the block (`userId`, `plan`, `org`, ...). Values become strings. */
  tags?: Record<string, string | number | boolean | null | undefined>;
}

export interface TraceScope {
  traceId: string;
  routeTag?: string;
  tags: Tags;
}

const storage = new AsyncLocalStorage<TraceScope>();

/** The innermost active trace, if any. */
export function currentTrace(): TraceScope | undefined {
  return storage.getStore();
}

function cleanTags(tags: TraceOptions['tags']): Tags {
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
  const parent = storage.getStore();
  const scope: TraceScope = {
    traceId: randomUUID(),
    routeTag: options.routeTag ?? parent?.routeTag,
    tags: { ...parent?.tags, ...cleanTags(options.tags) },
  };
  const startedAt = new Date();
  let status: 'ok' | 'error' = 'ok';
  try {
    return await storage.run(scope, fn);
  } catch (err) {
    status = 'error';
    throw err;
  } finally {
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
