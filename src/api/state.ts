/**
 * What the HTTP layer knows about the model: nothing until start-up has
 * loaded it, then the classifier. Handlers read it on every request, so
 * readiness flips without restarting the app.
 *
 * @module
 */
import type { Classifier } from "../classify/mod.ts";

/** Mutable server state shared by the routes. */
export interface ServerState {
  /** Set once the model session is ready. */
  classifier?: Classifier;
  /** Set when loading failed; the server keeps answering 503 with this reason. */
  loadError?: string;
}
