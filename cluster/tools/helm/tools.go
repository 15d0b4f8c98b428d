//go:build tools

// Package tools pins helm (helm.sh/helm/v4) for the local cluster's tests of the operator's Helm
// chart (build.sh builds it into ~/.cache/kubemcp/helm-<version>/).
package tools

import _ "helm.sh/helm/v4/cmd/helm"
