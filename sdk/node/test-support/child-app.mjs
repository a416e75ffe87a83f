// A small app run as its own process by runtime.test.mjs (under Node, Bun or Deno). MODE=late: the ingest settings are set
// after the imports (as dotenv does) and the script ends without flush(). MODE=edge: runs under
// edge-setup.mjs, configures explicitly and flushes.
import OpenAI from 'openai';
import { wrapOpenAI, withTrace, flush, configure } from 'tokentally';

const { MODE, FAKE, SINK } = process.env;
if (MODE === 'late') {
  process.env.TOKENTALLY_URL = SINK;
  process.env.TOKENTALLY_KEY = 'tt_ingest_late';
} else {
  configure({ endpoint: SINK, apiKey: 'tt_ingest_edge' });
}
const client = wrapOpenAI(new OpenAI({ apiKey: 'sk', baseURL: `${FAKE}/v1`, maxRetries: 0 }));
const ask = () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
const answer = await withTrace(
  async () => {
    const first = await ask();
    // After an await: attributed only where the runtime has AsyncLocalStorage.
    await ask();
    return first;
  },
  { tags: { userId: `child-${MODE}` } },
);
console.log(answer.choices[0].message.content);
if (MODE === 'edge') await flush();
