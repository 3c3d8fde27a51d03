// Package e2e holds black-box tests: they build the real macronode and svc-*
// binaries once in TestMain and drive them as an operator would, over real
// processes, sockets, signals and HTTP.
package e2e
