module github.com/macronode/macronode/e2e

go 1.26.8

require lukechampine.com/blake3 v1.4.1

require github.com/klauspost/cpuid/v2 v2.0.12 // indirect
