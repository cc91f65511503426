/** One readable line per receiver event, for `hbagg receive` and the demo. */
import type { ReceiverEvent } from './ledger.js';

export function formatEvent(e: ReceiverEvent): string {
  switch (e.type) {
    case 'node': {
      const parts = [`node ${e.node} ${e.change}`, `daemon ${e.daemon.slice(0, 8)}`];
      if (e.previous !== undefined) parts.push(`was ${e.previous.slice(0, 8)}`);
      if (e.change === 'expired') parts.push(`no ping within its ${e.lease_ms} ms lease; ${e.workers ?? 0} worker(s) now unknown`);
      else if (e.change === 'final') parts.push('shut down cleanly; lease released');
      else if (e.lease_ms !== undefined) parts.push(`lease ${e.lease_ms} ms`);
      return parts.join(', ');
    }
    case 'worker': {
      let line = `worker ${e.worker} ${e.change} (node ${e.node}, instance ${e.instance.slice(0, 8)}`;
      if (e.previous !== undefined) line += `, was ${e.previous.slice(0, 8)}`;
      if (e.reason !== undefined) line += `, reason ${e.reason}`;
      return `${line})`;
    }
    case 'request':
      return `rejected a ping with ${e.status}: ${e.error}`;
  }
}
