/**
 * The demo's event feed: what the platform saw (receiver events) and what
 * the script did, each stamped with the demo's time. The last 50 lines are
 * kept for the view; every line also goes to the screen as it happens.
 */
import { formatEvent, type ReceiverEvent } from '../receiver/index.js';
import { seconds } from './view.js';

const KEEP = 50;

export class EventFeed {
  private readonly lines: string[] = [];

  constructor(
    /** Milliseconds since the demo started. */
    private readonly elapsed: () => number,
    /** Shows one line as it happens (the screen's event line). */
    private readonly show: (elapsedMs: number, text: string) => void,
  ) {}

  /** An event the platform (the reference receiver) saw. */
  platform(e: ReceiverEvent): void {
    const text = formatEvent(e).replace(/ \(node demo-node, /, ' (');
    this.add(text, `platform: ${text}`);
  }

  /** A scripted act, shown like an event. */
  note(text: string): void {
    this.add(`* ${text}`, `demo: ${text}`);
  }

  /** The kept lines, oldest first. */
  recent(): string[] {
    return [...this.lines];
  }

  private add(line: string, shown: string): void {
    const t = this.elapsed();
    this.lines.push(`${seconds(t).padStart(6)}  ${line}`);
    if (this.lines.length > KEEP) this.lines.shift();
    this.show(t, shown);
  }
}
