import { createHandler } from './handler.js';

/** The Lambda entry point: one handler per container. */
export const handler = createHandler();
