// Package reliability holds ironflow's reliability and security suite: tests that build
// the real server binary, run it as a subprocess against SQLite and PostgreSQL, and
// attack it — kill -9 under load, several processes on one database, database restarts
// and dropped connections, receivers that fail in every way, hostile requests — then
// check what survived. docs/RELIABILITY.md states each guarantee with the test that
// proves it.
//
// Every request goes to 127.0.0.1 and every test stops by itself. The fast variants run
// in `make test`; IRONFLOW_RELIABILITY=long (`make test-reliability`) runs the long
// ones, and IRONFLOW_SOAK_DURATION (`make soak`) the soak test.
package reliability
