module github.com/macronode/macronode/e2e

go 1.26.8
