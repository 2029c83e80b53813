// deploy-tool: renders capscope's Helm chart and checks Kubernetes manifests, with
// Debian's Go packages only (Helm and kubeconform are not packaged in Debian 12).
//
//	deploy-tool render --chart DIR [--values FILE]... [--set key.path=value]...
//	                   [--release NAME] [--namespace NS] [--kube-version v1.31.0] [--notes]
//	deploy-tool check FILE...
//	deploy-tool data FILE CONFIGMAP KEY
//
// render does what `helm template` does for this chart: Go's text/template with
// sprig v3.2.3 (the library and version Helm 3 uses, packaged by Debian) and Helm's own
// functions (include, tpl, required, toYaml, fromYaml, toJson, fromJson, lookup), the
// .Values/.Release/.Chart/.Capabilities/.Template objects, values.yaml merged with
// --values files and --set, and the output as helm prints it ("# Source:" documents in
// Helm's install order). check decodes every document strictly into the subset of the
// Kubernetes API the manifests use (unknown fields, wrong types, bad enums and names
// fail), checks references between them, and prints the facts scripts/validate-deploy.sh
// asserts (security context, mounts, probes). data prints one entry of a ConfigMap
// (the agent's capscope.yaml, for the agent's own parser to read).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "render":
		err = runRender(os.Args[2:])
	case "check":
		err = runCheck(os.Args[2:])
	case "data":
		err = runData(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy-tool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: deploy-tool render --chart DIR [--values FILE]... [--set k=v]... "+
		"[--release NAME] [--namespace NS] [--kube-version vX.Y.Z] [--notes]\n"+
		"       deploy-tool check FILE...\n"+
		"       deploy-tool data FILE CONFIGMAP KEY")
	os.Exit(2)
}
