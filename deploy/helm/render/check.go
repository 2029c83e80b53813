package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ghodss/yaml"
)

// Names as the API validates them.
var (
	dns1123Label     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelName        = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValue       = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	configMapKey     = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	envVarName       = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	portName         = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envReference     = regexp.MustCompile(`\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)`)
)

// The capability names Linux knows (0..40), as Kubernetes spells them.
var linuxCapabilities = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID
		SETUID SETPCAP LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK
		IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
		SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
		MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
		CHECKPOINT_RESTORE`) {
		linuxCapabilities[c] = true
	}
}

// problems collects every finding of a check, so one run reports them all.
type problems struct{ list []string }

func (p *problems) add(where, format string, args ...interface{}) {
	p.list = append(p.list, where+": "+fmt.Sprintf(format, args...))
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// manifestSet is every object of the files checked together.
type manifestSet struct {
	namespaces      []namespaceObject
	serviceAccounts []serviceAccountObject
	configMaps      []configMapObject
	daemonSets      []daemonSetObject
}

func runCheck(files []string) error {
	if len(files) == 0 {
		return errors.New("give the manifest files to check")
	}
	var set manifestSet
	var p problems
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		for i, doc := range splitDocuments(string(text)) {
			decodeDocument(fmt.Sprintf("%s: document %d", f, i+1), doc, &set, &p)
		}
	}
	if len(p.list) == 0 {
		checkSet(&set, &p)
	}
	if len(p.list) > 0 {
		return errors.New(strings.Join(p.list, "\n  "))
	}
	for _, line := range facts(&set) {
		fmt.Println(line)
	}
	return nil
}

// runData prints the entry KEY of the ConfigMap named CONFIGMAP in FILE.
func runData(args []string) error {
	if len(args) != 3 {
		return errors.New("give FILE CONFIGMAP KEY")
	}
	text, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	for _, doc := range splitDocuments(string(text)) {
		var cm configMapObject
		if yaml.Unmarshal([]byte(doc), &cm) == nil && cm.Kind == "ConfigMap" && cm.Metadata.Name == args[1] {
			if v, ok := cm.Data[args[2]]; ok {
				fmt.Print(v)
				return nil
			}
		}
	}
	return fmt.Errorf("%s: no ConfigMap %s with a key %s", args[0], args[1], args[2])
}

// decodeStrict fills `out` from JSON, refusing fields `out` does not have. The API
// matches field names exactly; encoding/json ignores case, so the names are checked
// first, against the json tags of `out`'s type.
func decodeStrict(data []byte, out interface{}) error {
	var generic interface{}
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	if bad := unknownKeys("", generic, reflect.TypeOf(out)); len(bad) > 0 {
		return fmt.Errorf("unknown field %s", strings.Join(bad, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// jsonFields maps the exact json names of a struct's fields (embedded ones included)
// to their types.
func jsonFields(t reflect.Type, into map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous {
			jsonFields(f.Type, into)
			continue
		}
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name != "" && name != "-" {
			into[name] = f.Type
		}
	}
}

var jsonUnmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// unknownKeys lists the object keys of `v` that type `t` has no field for, exactly.
func unknownKeys(path string, v interface{}, t reflect.Type) []string {
	for t.Kind() == reflect.Ptr {
		t = t.Elem()
	}
	if reflect.PtrTo(t).Implements(jsonUnmarshalerType) || t == reflect.TypeOf(json.RawMessage{}) {
		return nil // a type that decodes itself (ports, quantities) or takes anything (affinity)
	}
	var bad []string
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]interface{})
		if !ok {
			return nil // the decoder reports the wrong type
		}
		fields := map[string]reflect.Type{}
		jsonFields(t, fields)
		for k, child := range obj {
			ft, ok := fields[k]
			if !ok {
				bad = append(bad, fmt.Sprintf("%q (at %s)", k, strings.TrimPrefix(path+"."+k, ".")))
				continue
			}
			bad = append(bad, unknownKeys(path+"."+k, child, ft)...)
		}
	case reflect.Slice:
		if list, ok := v.([]interface{}); ok {
			for i, item := range list {
				bad = append(bad, unknownKeys(fmt.Sprintf("%s[%d]", path, i), item, t.Elem())...)
			}
		}
	case reflect.Map:
		if obj, ok := v.(map[string]interface{}); ok {
			for k, child := range obj {
				bad = append(bad, unknownKeys(path+"."+k, child, t.Elem())...)
			}
		}
	}
	sort.Strings(bad)
	return bad
}

func decodeDocument(where, doc string, set *manifestSet, p *problems) {
	data, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		p.add(where, "not YAML (or a key twice): %v", err)
		return
	}
	var head typeMeta
	if err := json.Unmarshal(data, &head); err != nil {
		p.add(where, "not an object: %v", err)
		return
	}
	where = fmt.Sprintf("%s (%s)", where, head.Kind)
	var target interface{}
	switch head.APIVersion + " " + head.Kind {
	case "v1 Namespace":
		set.namespaces = append(set.namespaces, namespaceObject{})
		target = &set.namespaces[len(set.namespaces)-1]
	case "v1 ServiceAccount":
		set.serviceAccounts = append(set.serviceAccounts, serviceAccountObject{})
		target = &set.serviceAccounts[len(set.serviceAccounts)-1]
	case "v1 ConfigMap":
		set.configMaps = append(set.configMaps, configMapObject{})
		target = &set.configMaps[len(set.configMaps)-1]
	case "apps/v1 DaemonSet":
		set.daemonSets = append(set.daemonSets, daemonSetObject{})
		target = &set.daemonSets[len(set.daemonSets)-1]
	default:
		p.add(where, "apiVersion %q kind %q is not one this check knows (add it to schema.go)",
			head.APIVersion, head.Kind)
		return
	}
	if err := decodeStrict(data, target); err != nil {
		p.add(where, "%v", err)
	}
}

func checkMeta(where string, m objectMeta, namespaced bool, p *problems) {
	if len(m.Name) > 253 || !dns1123Subdomain.MatchString(m.Name) {
		p.add(where, "metadata.name %q is not a DNS-1123 subdomain", m.Name)
	}
	if namespaced && !dns1123Label.MatchString(m.Namespace) {
		p.add(where, "metadata.namespace %q is missing or not a DNS-1123 label", m.Namespace)
	}
	if !namespaced && m.Namespace != "" {
		p.add(where, "a cluster-scoped object has metadata.namespace %q", m.Namespace)
	}
	checkLabels(where+" metadata.labels", m.Labels, p)
	for k := range m.Annotations {
		checkLabelKey(where+" metadata.annotations", k, p)
	}
}

func checkLabelKey(where, key string, p *problems) {
	name := key
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		prefix := key[:i]
		name = key[i+1:]
		if len(prefix) > 253 || !dns1123Subdomain.MatchString(prefix) {
			p.add(where, "key %q: prefix is not a DNS-1123 subdomain", key)
		}
	}
	if len(name) > 63 || !labelName.MatchString(name) {
		p.add(where, "key %q: name is not a valid label name", key)
	}
}

func checkLabels(where string, labels map[string]string, p *problems) {
	for k, v := range labels {
		checkLabelKey(where, k, p)
		if len(v) > 63 || !labelValue.MatchString(v) {
			p.add(where, "value %q of %q is not a valid label value", v, k)
		}
	}
}

func checkSet(set *manifestSet, p *problems) {
	nsNames := map[string]bool{}
	for _, n := range set.namespaces {
		checkMeta("Namespace "+n.Metadata.Name, n.Metadata, false, p)
		nsNames[n.Metadata.Name] = true
	}
	inNamespace := func(where, ns string) {
		if len(nsNames) > 0 && !nsNames[ns] {
			p.add(where, "namespace %q is not the one the manifests create", ns)
		}
	}
	accounts := map[string]bool{}
	for _, a := range set.serviceAccounts {
		where := "ServiceAccount " + a.Metadata.Name
		checkMeta(where, a.Metadata, true, p)
		inNamespace(where, a.Metadata.Namespace)
		accounts[a.Metadata.Namespace+"/"+a.Metadata.Name] = true
	}
	configMaps := map[string]bool{}
	for _, c := range set.configMaps {
		where := "ConfigMap " + c.Metadata.Name
		checkMeta(where, c.Metadata, true, p)
		inNamespace(where, c.Metadata.Namespace)
		for k := range c.Data {
			if len(k) > 253 || !configMapKey.MatchString(k) {
				p.add(where, "data key %q is not a valid ConfigMap key", k)
			}
		}
		configMaps[c.Metadata.Namespace+"/"+c.Metadata.Name] = true
	}
	for i := range set.daemonSets {
		d := &set.daemonSets[i]
		where := "DaemonSet " + d.Metadata.Name
		checkMeta(where, d.Metadata, true, p)
		inNamespace(where, d.Metadata.Namespace)
		checkDaemonSet(where, d, accounts, configMaps, p)
	}
}

func checkDaemonSet(where string, d *daemonSetObject, accounts, configMaps map[string]bool, p *problems) {
	ns := d.Metadata.Namespace
	sel := d.Spec.Selector.MatchLabels
	if len(sel) == 0 && len(d.Spec.Selector.MatchExpressions) == 0 {
		p.add(where, "spec.selector selects nothing")
	}
	checkLabels(where+" spec.selector.matchLabels", sel, p)
	tmplLabels := d.Spec.Template.Metadata.Labels
	checkLabels(where+" spec.template.metadata.labels", tmplLabels, p)
	for k, v := range sel {
		if tmplLabels[k] != v {
			p.add(where, "spec.selector %s=%s does not match the template's labels", k, v)
		}
	}
	for k := range d.Spec.Template.Metadata.Annotations {
		checkLabelKey(where+" spec.template.metadata.annotations", k, p)
	}
	if u := d.Spec.UpdateStrategy; u != nil && !oneOf(u.Type, "", "RollingUpdate", "OnDelete") {
		p.add(where, "spec.updateStrategy.type %q: RollingUpdate or OnDelete", u.Type)
	}
	spec := &d.Spec.Template.Spec
	if spec.ServiceAccountName != "" && len(accounts) > 0 && !accounts[ns+"/"+spec.ServiceAccountName] {
		p.add(where, "serviceAccountName %q: no such ServiceAccount in %s", spec.ServiceAccountName, ns)
	}
	for _, t := range spec.Tolerations {
		if !oneOf(t.Operator, "", "Exists", "Equal") || !oneOf(t.Effect, "", "NoSchedule", "PreferNoSchedule", "NoExecute") {
			p.add(where, "toleration %+v: operator Exists|Equal, effect NoSchedule|PreferNoSchedule|NoExecute", t)
		}
	}
	volumes := checkVolumes(where, spec.Volumes, ns, configMaps, p)
	if len(spec.Containers) == 0 {
		p.add(where, "no containers")
	}
	names := map[string]bool{}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cw := fmt.Sprintf("%s container %q", where, c.Name)
		if !dns1123Label.MatchString(c.Name) || names[c.Name] {
			p.add(cw, "name is not a DNS-1123 label, or used twice")
		}
		names[c.Name] = true
		checkContainer(cw, c, volumes, p)
	}
}

func checkVolumes(where string, vols []volume, ns string, configMaps map[string]bool, p *problems) map[string]*volume {
	byName := map[string]*volume{}
	for i := range vols {
		v := &vols[i]
		vw := fmt.Sprintf("%s volume %q", where, v.Name)
		if !dns1123Label.MatchString(v.Name) || byName[v.Name] != nil {
			p.add(vw, "name is not a DNS-1123 label, or used twice")
		}
		byName[v.Name] = v
		sources := 0
		if v.HostPath != nil {
			sources++
			if !strings.HasPrefix(v.HostPath.Path, "/") {
				p.add(vw, "hostPath.path %q is not absolute", v.HostPath.Path)
			}
			if !oneOf(v.HostPath.Type, "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File",
				"Socket", "CharDevice", "BlockDevice") {
				p.add(vw, "hostPath.type %q is not a hostPath type", v.HostPath.Type)
			}
		}
		if v.ConfigMap != nil {
			sources++
			if len(configMaps) > 0 && !configMaps[ns+"/"+v.ConfigMap.Name] {
				p.add(vw, "configMap %q is not among the manifests", v.ConfigMap.Name)
			}
		}
		if v.EmptyDir != nil {
			sources++
			if !oneOf(v.EmptyDir.Medium, "", "Memory") {
				p.add(vw, "emptyDir.medium %q: \"\" or Memory", v.EmptyDir.Medium)
			}
		}
		if sources != 1 {
			p.add(vw, "needs exactly one source (hostPath, configMap or emptyDir), has %d", sources)
		}
	}
	return byName
}

func checkContainer(where string, c *container, volumes map[string]*volume, p *problems) {
	if c.Image == "" {
		p.add(where, "no image")
	}
	if !oneOf(c.ImagePullPolicy, "", "Always", "IfNotPresent", "Never") {
		p.add(where, "imagePullPolicy %q: Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		if !envVarName.MatchString(e.Name) {
			p.add(where, "env name %q is not valid", e.Name)
		}
		if e.Value != "" && e.ValueFrom != nil {
			p.add(where, "env %s has both value and valueFrom", e.Name)
		}
		env[e.Name] = true
	}
	// Kubernetes leaves $(NAME) as it is when NAME is not declared: a silent mistake.
	for _, a := range append(append([]string{}, c.Command...), c.Args...) {
		for _, m := range envReference.FindAllStringSubmatch(a, -1) {
			if !env[m[1]] {
				p.add(where, "argument %q refers to $(%s), which env does not declare", a, m[1])
			}
		}
	}
	ports := map[string]int32{}
	for _, port := range c.Ports {
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			p.add(where, "containerPort %d is not a port", port.ContainerPort)
		}
		if port.Name != "" {
			if len(port.Name) > 15 || !portName.MatchString(port.Name) || strings.Contains(port.Name, "--") ||
				!strings.ContainsAny(port.Name, "abcdefghijklmnopqrstuvwxyz") {
				p.add(where, "port name %q is not an IANA service name (<= 15 characters)", port.Name)
			}
			if _, dup := ports[port.Name]; dup {
				p.add(where, "port name %q used twice", port.Name)
			}
			ports[port.Name] = port.ContainerPort
		}
		if !oneOf(port.Protocol, "", "TCP", "UDP", "SCTP") {
			p.add(where, "protocol %q: TCP, UDP or SCTP", port.Protocol)
		}
	}
	checkSecurityContext(where, c.SecurityContext, p)
	checkResources(where, c.Resources, p)
	for name, pr := range map[string]*probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe,
		"readinessProbe": c.ReadinessProbe} {
		checkProbe(where+" "+name, pr, ports, p)
	}
	paths := map[string]bool{}
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	for _, m := range c.VolumeMounts {
		mw := fmt.Sprintf("%s volumeMount %q", where, m.Name)
		if volumes[m.Name] == nil {
			p.add(mw, "no volume of that name")
		}
		if !strings.HasPrefix(m.MountPath, "/") || paths[m.MountPath] {
			p.add(mw, "mountPath %q is not absolute, or used twice", m.MountPath)
		}
		paths[m.MountPath] = true
		if !oneOf(m.MountPropagation, "", "None", "HostToContainer", "Bidirectional") {
			p.add(mw, "mountPropagation %q: None, HostToContainer or Bidirectional", m.MountPropagation)
		}
		if m.MountPropagation == "Bidirectional" && !privileged {
			p.add(mw, "Bidirectional propagation needs a privileged container")
		}
	}
}

func checkSecurityContext(where string, s *securityContext, p *problems) {
	if s == nil {
		return
	}
	if s.Capabilities != nil {
		for _, c := range append(append([]string{}, s.Capabilities.Add...), s.Capabilities.Drop...) {
			if c != "ALL" && !linuxCapabilities[c] {
				p.add(where, "capability %q is not a Linux capability (write e.g. SYS_PTRACE, no CAP_)", c)
			}
		}
	}
	privileged := s.Privileged != nil && *s.Privileged
	sysAdmin := s.Capabilities != nil && oneOf("SYS_ADMIN", s.Capabilities.Add...)
	if s.AllowPrivilegeEscalation != nil && !*s.AllowPrivilegeEscalation && (privileged || sysAdmin) {
		p.add(where, "allowPrivilegeEscalation false cannot go with privileged or CAP_SYS_ADMIN (the API refuses it)")
	}
	for name, prof := range map[string]*profileRef{"seccompProfile": s.SeccompProfile, "appArmorProfile": s.AppArmorProfile} {
		if prof == nil {
			continue
		}
		if !oneOf(prof.Type, "RuntimeDefault", "Unconfined", "Localhost") {
			p.add(where, "%s.type %q: RuntimeDefault, Unconfined or Localhost", name, prof.Type)
		}
		if (prof.Type == "Localhost") != (prof.LocalhostProfile != "") {
			p.add(where, "%s.localhostProfile goes with type Localhost, and only with it", name)
		}
	}
	if !oneOf(s.ProcMount, "", "Default", "Unmasked") {
		p.add(where, "procMount %q: Default or Unmasked", s.ProcMount)
	}
}

// quantityValue turns a quantity into a number, to compare requests with limits.
func quantityValue(q quantity) float64 {
	s := string(q)
	suffixes := []struct {
		s string
		m float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
		{"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18}}
	for _, suf := range suffixes {
		if strings.HasSuffix(s, suf.s) {
			v, _ := strconv.ParseFloat(strings.TrimSuffix(s, suf.s), 64)
			return v * suf.m
		}
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func checkResources(where string, r *resourceRequirements, p *problems) {
	if r == nil {
		return
	}
	for _, m := range []map[string]quantity{r.Requests, r.Limits} {
		for k := range m {
			if !oneOf(k, "cpu", "memory", "ephemeral-storage") && !strings.HasPrefix(k, "hugepages-") {
				p.add(where, "resource %q is not cpu, memory, ephemeral-storage or hugepages-*", k)
			}
		}
	}
	for k, req := range r.Requests {
		if lim, ok := r.Limits[k]; ok && quantityValue(req) > quantityValue(lim) {
			p.add(where, "resources.requests.%s %s is above its limit %s", k, req, lim)
		}
	}
}

func checkProbe(where string, pr *probe, ports map[string]int32, p *problems) {
	if pr == nil {
		return
	}
	handlers := 0
	var port *intOrString
	if pr.HTTPGet != nil {
		handlers++
		port = &pr.HTTPGet.Port
		if !oneOf(pr.HTTPGet.Scheme, "", "HTTP", "HTTPS") {
			p.add(where, "httpGet.scheme %q: HTTP or HTTPS", pr.HTTPGet.Scheme)
		}
	}
	if pr.TCPSocket != nil {
		handlers++
		port = &pr.TCPSocket.Port
	}
	if pr.Exec != nil {
		handlers++
	}
	if handlers != 1 {
		p.add(where, "needs exactly one of httpGet, tcpSocket, exec (has %d)", handlers)
	}
	if port != nil {
		if port.IsString {
			if _, ok := ports[port.Str]; !ok {
				p.add(where, "port %q is not a named port of the container", port.Str)
			}
		} else if port.Int < 1 || port.Int > 65535 {
			p.add(where, "port %d is not a port", port.Int)
		}
	}
}

// ---- facts --------------------------------------------------------------------------

func boolFact(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}

func sortedJoin(list []string) string {
	s := append([]string{}, list...)
	sort.Strings(s)
	return strings.Join(s, ",")
}

func probeFact(pr *probe, ports map[string]int32) string {
	if pr == nil {
		return "none"
	}
	if pr.HTTPGet != nil {
		port := pr.HTTPGet.Port.String()
		if pr.HTTPGet.Port.IsString {
			port = strconv.Itoa(int(ports[pr.HTTPGet.Port.Str]))
		}
		return fmt.Sprintf("httpGet %s port %s", pr.HTTPGet.Path, port)
	}
	if pr.TCPSocket != nil {
		return "tcpSocket " + pr.TCPSocket.Port.String()
	}
	return "exec " + strings.Join(pr.Exec.Command, " ")
}

func volumeFact(v *volume) string {
	switch {
	case v == nil:
		return "missing"
	case v.HostPath != nil:
		return fmt.Sprintf("hostPath %s %s", v.HostPath.Path, v.HostPath.Type)
	case v.ConfigMap != nil:
		return "configMap " + v.ConfigMap.Name
	case v.EmptyDir != nil:
		return "emptyDir"
	}
	return "unknown"
}

// configFacts lists the keys of a ConfigMap entry holding a YAML map (capscope.yaml).
func configFacts(c *configMapObject) []string {
	var out []string
	for key, text := range c.Data {
		if !strings.HasSuffix(key, ".yaml") {
			continue
		}
		m := map[string]interface{}{}
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			out = append(out, fmt.Sprintf("configmap %s %s: not YAML: %v", c.Metadata.Name, key, err))
			continue
		}
		for k, v := range m {
			out = append(out, fmt.Sprintf("configmap %s %s: %s=%v", c.Metadata.Name, key, k, v))
		}
	}
	return out
}

// facts prints what scripts/validate-deploy.sh asserts, one per line, sorted.
func facts(set *manifestSet) []string {
	var out []string
	for _, n := range set.namespaces {
		out = append(out, "object Namespace "+n.Metadata.Name)
		for k, v := range n.Metadata.Labels {
			if strings.HasPrefix(k, "pod-security.kubernetes.io/") {
				out = append(out, fmt.Sprintf("namespace %s label %s=%s", n.Metadata.Name, k, v))
			}
		}
	}
	for _, a := range set.serviceAccounts {
		out = append(out, fmt.Sprintf("object ServiceAccount %s/%s automountToken=%s",
			a.Metadata.Namespace, a.Metadata.Name, boolFact(a.AutomountServiceAccountToken)))
	}
	for i := range set.configMaps {
		c := &set.configMaps[i]
		out = append(out, fmt.Sprintf("object ConfigMap %s/%s", c.Metadata.Namespace, c.Metadata.Name))
		out = append(out, configFacts(c)...)
	}
	for i := range set.daemonSets {
		out = append(out, daemonSetFacts(&set.daemonSets[i])...)
	}
	sort.Strings(out)
	return out
}

func daemonSetFacts(d *daemonSetObject) []string {
	spec := &d.Spec.Template.Spec
	name := d.Metadata.Namespace + "/" + d.Metadata.Name
	out := []string{
		"object DaemonSet " + name,
		fmt.Sprintf("daemonset %s hostPID=%t hostNetwork=%t hostIPC=%t", name, spec.HostPID, spec.HostNetwork, spec.HostIPC),
		fmt.Sprintf("daemonset %s serviceAccountName=%s automountToken=%s", name, spec.ServiceAccountName,
			boolFact(spec.AutomountServiceAccountToken)),
	}
	vols := map[string]*volume{}
	for i := range spec.Volumes {
		vols[spec.Volumes[i].Name] = &spec.Volumes[i]
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		pre := fmt.Sprintf("container %s ", c.Name)
		s := c.SecurityContext
		if s == nil {
			s = &securityContext{}
		}
		caps := s.Capabilities
		if caps == nil {
			caps = &capsSpec{}
		}
		runAs := "unset"
		if s.RunAsUser != nil {
			runAs = strconv.FormatInt(*s.RunAsUser, 10)
		}
		profile := func(pr *profileRef) string {
			if pr == nil {
				return "unset"
			}
			return pr.Type
		}
		ports := map[string]int32{}
		for _, port := range c.Ports {
			ports[port.Name] = port.ContainerPort
			out = append(out, fmt.Sprintf("%sport %s %d/%s", pre, port.Name, port.ContainerPort, port.Protocol))
		}
		out = append(out,
			pre+"privileged="+boolFact(s.Privileged),
			pre+"runAsUser="+runAs,
			pre+"allowPrivilegeEscalation="+boolFact(s.AllowPrivilegeEscalation),
			pre+"readOnlyRootFilesystem="+boolFact(s.ReadOnlyRootFilesystem),
			pre+"capabilities.drop="+sortedJoin(caps.Drop),
			pre+"capabilities.add="+sortedJoin(caps.Add),
			pre+"seccompProfile="+profile(s.SeccompProfile),
			pre+"appArmorProfile="+profile(s.AppArmorProfile),
			pre+"args="+strings.Join(c.Args, " "),
			pre+"startupProbe="+probeFact(c.StartupProbe, ports),
			pre+"livenessProbe="+probeFact(c.LivenessProbe, ports),
			pre+"readinessProbe="+probeFact(c.ReadinessProbe, ports),
		)
		if r := c.Resources; r != nil {
			for k, v := range r.Requests {
				out = append(out, fmt.Sprintf("%sresources.requests.%s=%s", pre, k, v))
			}
			for k, v := range r.Limits {
				out = append(out, fmt.Sprintf("%sresources.limits.%s=%s", pre, k, v))
			}
		}
		for _, m := range c.VolumeMounts {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			prop := m.MountPropagation
			if prop == "" {
				prop = "None"
			}
			out = append(out, fmt.Sprintf("%smount %s %s %s <- %s", pre, m.MountPath, mode, prop, volumeFact(vols[m.Name])))
		}
	}
	return out
}
