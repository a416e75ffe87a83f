// log(): a custom event (a non-LLM step, or a call to a provider without a wrapper) in the current trace.
import { currentTrace } from './context.js';
import { contentFields, snapshot } from './record.js';
import { uuid } from './runtime.js';
import { enqueueEvent, transport } from './transport.js';

export interface LogEntry {
  /** What happened: `rerank`, `vector-search`, `cohere.generate`, ... */
  name: string;
  provider?: string;
  model?: string;
  agent?: string;
  usage?: { input_tokens?: number; output_tokens?: number; cache_read_tokens?: number; cache_creation_tokens?: number };
  /** Explicit cost, a decimal string in USD (`"0.0042"`), for providers tokentally has no price for. */
  costUsd?: string;
  latencyMs?: number;
  status?: 'ok' | 'error' | 'cancelled';
  error?: string;
  tools?: string[];
  /** Extra tags for this event only. */
  tags?: Record<string, string>;
  prompt?: unknown;
  response?: unknown;
}

/** Records a custom event in the current trace (or none). Never throws. */
export function log(entry: LogEntry): void {
  try {
    const trace = currentTrace();
    if (!(trace ? trace.recorded : transport.sample())) return;
    const tags = { ...trace?.tags, ...entry.tags };
    const event: Record<string, unknown> = {
      id: uuid(),
      timestamp: new Date().toISOString(),
      kind: 'custom',
      name: entry.name,
      provider: entry.provider,
      model: entry.model ?? entry.name,
      agent: entry.agent,
      usage: entry.usage,
      cost_usd: entry.costUsd,
      latency_ms: entry.latencyMs === undefined ? undefined : Math.max(0, Math.round(entry.latencyMs)),
      status: entry.status,
      error: entry.error,
      tools: entry.tools,
    };
    if (trace?.traceId) {
      event.trace_id = trace.traceId;
      if (trace.routeTag) event.route_tag = trace.routeTag;
    }
    if (Object.keys(tags).length) event.tags = tags;
    // Capped and redacted as the wrappers' prompts and responses are.
    enqueueEvent(event, contentFields(event, snapshot(entry.prompt), snapshot(entry.response)));
  } catch {
    // never reaches the host app
  }
}
