package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver/v3"
	"github.com/Masterminds/sprig/v3"
	"github.com/ghodss/yaml"
)

// chartMeta is Chart.yaml with the Go field names Helm's templates see (.Chart.Name).
type chartMeta struct {
	APIVersion   string            `json:"apiVersion"`
	Name         string            `json:"name"`
	Version      string            `json:"version"`
	AppVersion   string            `json:"appVersion,omitempty"`
	Description  string            `json:"description,omitempty"`
	Type         string            `json:"type,omitempty"`
	KubeVersion  string            `json:"kubeVersion,omitempty"`
	Home         string            `json:"home,omitempty"`
	Keywords     []string          `json:"keywords,omitempty"`
	Sources      []string          `json:"sources,omitempty"`
	Icon         string            `json:"icon,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Maintainers  []json.RawMessage `json:"maintainers,omitempty"`
	Deprecated   bool              `json:"deprecated,omitempty"`
	Dependencies []json.RawMessage `json:"dependencies,omitempty"`
}

type release struct {
	Name      string
	Namespace string
	Service   string
	Revision  int
	IsInstall bool
	IsUpgrade bool
}

type kubeVersion struct {
	Version    string
	Major      string
	Minor      string
	GitVersion string
}

func (k kubeVersion) String() string { return k.Version }

type capabilities struct {
	KubeVersion kubeVersion
	HelmVersion map[string]string
}

type templateInfo struct {
	Name     string
	BasePath string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type renderOptions struct {
	chartDir    string
	valueFiles  listFlag
	sets        listFlag
	releaseName string
	namespace   string
	kubeVersion string
	notes       bool
}

func runRender(args []string) error {
	var o renderOptions
	fs := flag.NewFlagSet("render", flag.ContinueOnError)
	fs.StringVar(&o.chartDir, "chart", "", "chart directory")
	fs.Var(&o.valueFiles, "values", "values file (repeatable; later ones win)")
	fs.Var(&o.sets, "set", "key.path=value (repeatable; wins over --values)")
	fs.StringVar(&o.releaseName, "release", "capscope", "release name")
	fs.StringVar(&o.namespace, "namespace", "capscope", "release namespace")
	fs.StringVar(&o.kubeVersion, "kube-version", "v1.31.0", "Kubernetes version for .Capabilities")
	fs.BoolVar(&o.notes, "notes", false, "print the rendered NOTES.txt instead of the manifests")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.chartDir == "" {
		return errors.New("--chart DIR is required")
	}
	out, err := render(o)
	if err != nil {
		return err
	}
	_, err = os.Stdout.WriteString(out)
	return err
}

// readYAMLMap reads a YAML file into JSON-typed data, as Helm's loader does
// (sigs.k8s.io/yaml, of which ghodss/yaml is the origin): numbers become float64.
func readYAMLMap(path string) (map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return m, nil
}

// mergeValues lays `over` onto `base` as Helm coalesces user values onto the chart's:
// maps merge key by key, anything else replaces, and null deletes the key.
func mergeValues(base, over map[string]interface{}) map[string]interface{} {
	for k, v := range over {
		if v == nil {
			delete(base, k)
			continue
		}
		if vm, ok := v.(map[string]interface{}); ok {
			if bm, ok := base[k].(map[string]interface{}); ok {
				base[k] = mergeValues(bm, vm)
				continue
			}
		}
		base[k] = v
	}
	return base
}

// parseSet handles the `a.b.c=value` form of helm's --set: true/false, null,
// integers and plain strings (lists and escapes are not supported).
func parseSet(expr string, into map[string]interface{}) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: expected key.path=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var value interface{} = raw
	switch {
	case raw == "true" || raw == "false":
		value = raw == "true"
	case raw == "null":
		value = nil
	default:
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			value = n
		}
	}
	m := into
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = value
	return nil
}

func loadValues(o renderOptions) (map[string]interface{}, error) {
	values, err := readYAMLMap(filepath.Join(o.chartDir, "values.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range o.valueFiles {
		more, err := readYAMLMap(f)
		if err != nil {
			return nil, err
		}
		values = mergeValues(values, more)
	}
	sets := map[string]interface{}{}
	for _, s := range o.sets {
		if err := parseSet(s, sets); err != nil {
			return nil, err
		}
	}
	return mergeValues(values, sets), nil
}

func parseKubeVersion(v string) (kubeVersion, error) {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return kubeVersion{}, fmt.Errorf("--kube-version %q: expected vMAJOR.MINOR.PATCH", v)
	}
	return kubeVersion{Version: v, Major: parts[0], Minor: parts[1], GitVersion: v}, nil
}

// checkKubeVersion refuses a Kubernetes version outside Chart.yaml's kubeVersion, as
// helm install and helm template do.
func checkKubeVersion(constraint, version string) error {
	if constraint == "" {
		return nil
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return fmt.Errorf("Chart.yaml kubeVersion %q: %v", constraint, err)
	}
	v, err := semver.NewVersion(version)
	if err != nil {
		return fmt.Errorf("--kube-version %q: %v", version, err)
	}
	if !c.Check(v) {
		return fmt.Errorf("chart requires kubeVersion %s, which %s is not", constraint, version)
	}
	return nil
}

// toYAML is Helm's toYaml: the YAML of the JSON form, without the final newline.
func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(s string) []interface{} {
	var a []interface{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

// funcMap is sprig's text functions less env and expandenv (as in Helm) plus Helm's
// own; include and tpl are bound to the template set once it is parsed.
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(msg)
		}
		return v, nil
	}
	// helm template has no cluster to look objects up in: lookup finds nothing.
	f["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(string, interface{}) (string, error) { return "", errors.New("not bound") }
	f["tpl"] = func(string, interface{}) (string, error) { return "", errors.New("not bound") }
	return f
}

// bindHelmFuncs gives include and tpl the parsed template set, as Helm's engine does.
func bindHelmFuncs(t *template.Template) {
	t.Funcs(template.FuncMap{
		"include": func(name string, data interface{}) (string, error) {
			var buf bytes.Buffer
			if err := t.ExecuteTemplate(&buf, name, data); err != nil {
				return "", err
			}
			return buf.String(), nil
		},
		"tpl": func(text string, data interface{}) (string, error) {
			clone, err := t.Clone()
			if err != nil {
				return "", err
			}
			parsed, err := clone.New("tpl").Parse(text)
			if err != nil {
				return "", err
			}
			var buf bytes.Buffer
			if err := parsed.Execute(&buf, data); err != nil {
				return "", err
			}
			return buf.String(), nil
		},
	})
}

// Helm's install order, for the kinds a chart like this one has.
var installOrder = []string{"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService"}

func kindRank(doc string) int {
	var head struct {
		Kind string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err == nil {
		for i, k := range installOrder {
			if k == head.Kind {
				return i
			}
		}
	}
	return len(installOrder)
}

type renderedDoc struct {
	source string
	body   string
	rank   int
}

func templateFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func render(o renderOptions) (string, error) {
	var meta chartMeta
	chartYAML, err := os.ReadFile(filepath.Join(o.chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	if err := yaml.UnmarshalStrict(chartYAML, &meta); err != nil {
		return "", fmt.Errorf("Chart.yaml: %v", err)
	}
	if meta.APIVersion != "v2" || meta.Name == "" || meta.Version == "" {
		return "", errors.New("Chart.yaml: apiVersion v2, name and version are required")
	}
	values, err := loadValues(o)
	if err != nil {
		return "", err
	}
	kv, err := parseKubeVersion(o.kubeVersion)
	if err != nil {
		return "", err
	}
	if err := checkKubeVersion(meta.KubeVersion, kv.Version); err != nil {
		return "", err
	}
	top := map[string]interface{}{
		"Values":       values,
		"Chart":        meta,
		"Release":      release{Name: o.releaseName, Namespace: o.namespace, Service: "Helm", Revision: 1, IsInstall: true},
		"Capabilities": capabilities{KubeVersion: kv, HelmVersion: map[string]string{"version": "v3"}},
	}
	files, err := templateFiles(filepath.Join(o.chartDir, "templates"))
	if err != nil {
		return "", err
	}
	// Helm names each template by chart name and path, and parses them all into one set.
	root := template.New("gotpl").Funcs(funcMap()).Option("missingkey=zero")
	names := map[string]string{}
	for _, f := range files {
		rel, _ := filepath.Rel(o.chartDir, f)
		name := filepath.ToSlash(filepath.Join(meta.Name, rel))
		text, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if _, err := root.New(name).Parse(string(text)); err != nil {
			return "", err
		}
		names[name] = f
	}
	bindHelmFuncs(root)
	var docs []renderedDoc
	keys := make([]string, 0, len(names))
	for n := range names {
		keys = append(keys, n)
	}
	sort.Strings(keys)
	for _, name := range keys {
		base := filepath.Base(name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != o.notes {
			continue
		}
		if !isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".yml") {
			continue
		}
		data := map[string]interface{}{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = templateInfo{Name: name, BasePath: meta.Name + "/templates"}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		body := strings.ReplaceAll(buf.String(), "<no value>", "")
		if strings.TrimSpace(body) == "" {
			continue
		}
		if isNotes {
			return body, nil
		}
		for _, part := range splitDocuments(body) {
			docs = append(docs, renderedDoc{source: name, body: part, rank: kindRank(part)})
		}
	}
	sort.SliceStable(docs, func(i, j int) bool { return docs[i].rank < docs[j].rank })
	var out strings.Builder
	for _, d := range docs {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, strings.TrimRight(d.body, "\n"))
	}
	return out.String(), nil
}

// splitDocuments cuts a multi-document YAML text at its "---" lines and drops the
// documents that hold nothing but blanks and comments.
func splitDocuments(text string) []string {
	var docs []string
	var cur []string
	flush := func() {
		doc := strings.Join(cur, "\n")
		if hasContent(doc) {
			docs = append(docs, strings.Trim(doc, "\n"))
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.TrimRight(line, " \t") == "---" || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return docs
}

func hasContent(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}
