// The storage contract × SQLite and PostgreSQL (ARCHITECTURE.md §11). The PostgreSQL half runs
// in a database of its own, created for this run and dropped at its end; without a server it
// shows one pending line saying how to start one.
import { describeStorage } from './contract.js';
import { postgresBackend, postgresSkipReason, sqliteBackend } from './backends.js';

const skip = await postgresSkipReason();

describeStorage('SQLite', sqliteBackend());
describeStorage('PostgreSQL', skip ?? postgresBackend());
