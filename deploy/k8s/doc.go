// Package k8s holds no code: it is the home of the Kubernetes manifests of
// a distributed pushbench run (base/, overlays/small, overlays/large,
// tools/) and of the test that decodes every one of them strictly into the
// k8s.io/api types, renders the kustomize overlays and checks that the
// server, the agents and the coordinator fit together. README.md has the
// commands for a cluster.
package k8s
