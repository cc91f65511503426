export { startNatsServer, type NatsServerHandle, type NatsServerOptions } from './nats-server.js';
export {
  startPlatformStub,
  type PlatformStub,
  type RecordedPing,
  type StubAnswer,
  type StubResponder,
} from './platform-stub.js';
export { canConnect, getFreePort } from './ports.js';
export { sleep, waitFor, type WaitForOptions } from './wait-for.js';
export { startTestDaemon, natsClient, beat, uniquePrefix, type TestDaemon, type TestDaemonOptions } from './daemon.js';
export { CLI, spawnHbagg, type HbaggProcess } from './cli.js';
export { startLeafTopology, type LeafTopology } from './nats-topology.js';
