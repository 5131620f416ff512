/**
 * Putting work on threads: bounded queues, the one Worker message protocol
 * (calls, errors as `{ code, message }`, transfers, forwarded log lines) and
 * the supervisor that keeps Workers alive and cuts off work past its deadline.
 *
 * @module
 */
export {
  BoundedQueue,
  type BoundedQueueOptions,
  QueueFullError,
  type QueueRunOptions,
} from "./bounded_queue.ts";
export {
  type CallMessage,
  type ChannelOptions,
  fromWire,
  type Handlers,
  hasWorkers,
  type Methods,
  movable,
  Moved,
  serveMessages,
  startWorker,
  toWire,
  type WireError,
  WorkerChannel,
  workerLogger,
} from "./messages.ts";
export {
  type CallOptions,
  type HostState,
  type HostStatus,
  Supervisor,
  type SupervisorOptions,
} from "./supervisor.ts";
