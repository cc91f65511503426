/** `hbagg receive`: the reference receiver as a process (memory ledger, or a replica on JetStream KV). */
import { formatEvent, jetstreamStore, startReceiver, type ReceiverLogger } from '../receiver/index.js';
import { flags, intFlag } from './flags.js';

export async function receive(args: string[], usage: string): Promise<number> {
  const values = flags('receive', args, usage, {
    port: { type: 'string' }, host: { type: 'string' }, 'next-interval-ms': { type: 'string' },
    token: { type: 'string' }, json: { type: 'boolean' }, 'no-delta': { type: 'boolean' },
    store: { type: 'string' }, bucket: { type: 'string' }, replicas: { type: 'string' },
  });
  if (!values) return 2;
  const port = intFlag('port', values.port ?? '8080', 0, 65_535);
  const next = intFlag('next-interval-ms', values['next-interval-ms'], 0, 86_400_000);
  const replicas = intFlag('replicas', values.replicas, 1, 5);
  const servers = values.store?.split(',').map((u) => u.trim());
  const problems = [port, next, replicas].filter((x): x is string => typeof x === 'string');
  if (servers?.some((u) => !/^(nats|tls):\/\/[^\s/]+$/.test(u))) problems.push(`--store expects nats://HOST:PORT (comma separated), got ${JSON.stringify(values.store)}`);
  if (values.store === undefined && (values.bucket !== undefined || values.replicas !== undefined)) problems.push('--bucket and --replicas need --store');
  if (values.bucket !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(values.bucket)) problems.push(`--bucket expects letters, digits, - and _, got ${JSON.stringify(values.bucket)}`);
  if (problems.length > 0) {
    console.error(problems.map((p) => `hbagg receive: ${p}`).join('\n'));
    return 2;
  }
  const host = values.host ?? '127.0.0.1';
  const json = values.json === true;
  const store = servers === undefined
    ? undefined
    : jetstreamStore({ servers, ...(values.bucket ? { bucket: values.bucket } : {}), ...(typeof replicas === 'number' ? { replicas } : {}) });
  let r;
  try {
    r = await startReceiver({
      port: port as number,
      host,
      ...(store ? { store } : {}),
      logger: stderrLogger(),
      nextIntervalMs: typeof next === 'number' ? next : undefined,
      token: values.token ?? process.env['HBAGG_RECEIVER_TOKEN'],
      delta: values['no-delta'] !== true,
      onEvent: (e) => console.log(json ? JSON.stringify(e) : `${new Date(e.at).toISOString()} ${formatEvent(e)}`),
    });
  } catch (err) {
    const where = store ? `the store at ${values.store} or ${host}:${String(port)}` : `${host}:${String(port)}`;
    console.error(`hbagg receive: cannot start (${where}): ${(err as Error).message}`);
    return 1;
  }
  const what = store ? `; ledger in JetStream KV at ${values.store}` : '';
  console.error(`hbagg receive: listening on http://${host.includes(':') ? `[${host}]` : host}:${r.port}; POST pings to any path (GET /v1/nodes shows what it knows)${what}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await r.close();
  const s = r.stats();
  console.error(`hbagg receive: stopped after ${s.pings} pings (${s.rejected} rejected, ${s.duplicates} repeated, ${s.unavailable} refused with 503)`);
  return 0;
}

/** JSON lines on stderr (stdout carries the events), each message at most once per 5 s. */
function stderrLogger(): ReceiverLogger {
  const last = new Map<string, number>();
  const line = (level: string) => (obj: object, msg: string) => {
    const now = Date.now();
    if (now - (last.get(msg) ?? -Infinity) < 5_000) return;
    last.set(msg, now);
    console.error(JSON.stringify({ level, time: now, msg, ...obj }));
  };
  return { info: line('info'), warn: line('warn') };
}
