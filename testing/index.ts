/**
 * Test support shared by test/ and bench/ (like nats.js `nst/`): a real
 * nats-server launcher, a real HTTP platform stub, an in-process daemon,
 * the `hbagg` command in a child process, waits with deadlines, and stats.
 */
export { startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats-server.js';
export {
  startPlatformStub,
  type PlatformStub,
  type RecordedPing,
  type StubAnswer,
  type StubResponder,
} from './platform-stub.js';
export { freePort } from '../src/util/free-port.js';
export { canConnect } from './ports.js';
export { sleep, waitFor, type WaitForOptions } from './wait-for.js';
export { startTestDaemon, natsClient, beat, uniquePrefix, type TestDaemon, type TestDaemonOptions } from './daemon.js';
export { CLI, spawnHbagg, type HbaggProcess } from './cli.js';
export { linearFit, mean, median, quantile, sig, sorted } from './stats.js';
export { startLeafTopology, type LeafTopology } from './nats-topology.js';
