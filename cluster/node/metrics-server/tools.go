//go:build tools

// Package tools pins the binary this wrapper module builds.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
