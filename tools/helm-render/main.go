// helm-render renders a Helm chart the way `helm template` does, for machines without
// helm: Go's text/template with the sprig functions and helm's own (include, tpl,
// required, toYaml, fromYaml, toJson, fromJson, lookup), values merged from the chart's
// values.yaml, -f files and --set, checked against values.schema.json, and manifests
// printed in helm's install order with `# Source:` headers.
//
// Usage:
//
//	helm-render CHART_DIR RELEASE NAMESPACE [flags]
//
// Flags (anywhere on the command line):
//
//	-f, --values FILE        merge a values file (repeatable; later wins)
//	--set K=V[,K=V]          set values, typed as helm does (true, false, null, integers, {a,b} lists)
//	--set-string K=V[,K=V]   set values, always strings
//	--include-crds           print the chart's crds/ files first
//	-a, --api-versions GV    an API version the cluster serves, e.g. monitoring.coreos.com/v1 (repeatable)
//	--kube-version V         .Capabilities.KubeVersion (default v1.33.0)
//	--notes                  print the rendered templates/NOTES.txt instead of the manifests
//
// Build (Debian's Go and packages, no module proxy):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helm-render main.go
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type options struct {
	chartDir, release, namespace string
	valueFiles                   []string
	sets                         []setFlag
	includeCRDs, notes           bool
	apiVersions                  []string
	kubeVersion                  string
}

type setFlag struct {
	expr     string
	asString bool
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "helm-render: %v\n\nusage: helm-render CHART_DIR RELEASE NAMESPACE [-f values.yaml] [--set k=v] [--include-crds] [--api-versions gv] [--notes]\n", err)
		os.Exit(2)
	}
	out, err := run(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

func parseArgs(args []string) (*options, error) {
	o := &options{kubeVersion: "v1.33.0"}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, inline, hasInline := a, "", false
		if strings.HasPrefix(a, "--") {
			if eq := strings.Index(a, "="); eq > 0 {
				name, inline, hasInline = a[:eq], a[eq+1:], true
			}
		}
		value := func() (string, error) {
			if hasInline {
				return inline, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "-f", "--values":
			if v, err = value(); err == nil {
				o.valueFiles = append(o.valueFiles, v)
			}
		case "--set":
			if v, err = value(); err == nil {
				o.sets = append(o.sets, setFlag{expr: v})
			}
		case "--set-string":
			if v, err = value(); err == nil {
				o.sets = append(o.sets, setFlag{expr: v, asString: true})
			}
		case "-a", "--api-versions":
			if v, err = value(); err == nil {
				o.apiVersions = append(o.apiVersions, strings.Split(v, ",")...)
			}
		case "--kube-version":
			if v, err = value(); err == nil {
				o.kubeVersion = v
			}
		case "--include-crds":
			o.includeCRDs = true
		case "--notes":
			o.notes = true
		default:
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unknown flag %s", a)
			}
			pos = append(pos, a)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(pos) != 3 {
		return nil, fmt.Errorf("want CHART_DIR RELEASE NAMESPACE, got %d arguments", len(pos))
	}
	o.chartDir, o.release, o.namespace = pos[0], pos[1], pos[2]
	if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(o.release) || len(o.release) > 53 {
		return nil, fmt.Errorf("release name %q is invalid (lowercase DNS label of at most 53 characters)", o.release)
	}
	return o, nil
}

// ---------------------------------------------------------------------------------------
// Chart, values and schema

// chartMetadata maps Chart.yaml's keys to the field names templates use (.Chart.Name, ...).
var chartFields = map[string]string{
	"apiVersion": "APIVersion", "name": "Name", "version": "Version", "appVersion": "AppVersion",
	"description": "Description", "type": "Type", "kubeVersion": "KubeVersion", "home": "Home",
	"icon": "Icon", "keywords": "Keywords", "sources": "Sources", "maintainers": "Maintainers",
	"annotations": "Annotations", "deprecated": "Deprecated", "dependencies": "Dependencies",
}

func loadChart(dir string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("Chart.yaml: %v", err)
	}
	chart := map[string]interface{}{}
	for k, v := range m {
		f, ok := chartFields[k]
		if !ok {
			return nil, fmt.Errorf("Chart.yaml: unknown field %q", k)
		}
		chart[f] = v
	}
	if chart["APIVersion"] != "v2" {
		return nil, fmt.Errorf("Chart.yaml: apiVersion must be v2")
	}
	for _, f := range []string{"Name", "Version"} {
		if s, _ := chart[f].(string); s == "" {
			return nil, fmt.Errorf("Chart.yaml: %s is required", strings.ToLower(f))
		}
	}
	if deps, _ := chart["Dependencies"].([]interface{}); len(deps) > 0 {
		return nil, fmt.Errorf("Chart.yaml: dependencies are not supported by helm-render")
	}
	return chart, nil
}

func readValuesFile(p string) (map[string]interface{}, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	if m == nil {
		m = map[string]interface{}{}
	}
	return m, nil
}

// merge coalesces src over dst as helm does: maps merge key by key, anything else
// replaces, and a null deletes the key.
func merge(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// splitUnescaped splits s on sep, except inside {...} (when braces) and after a backslash.
func splitUnescaped(s string, sep byte, braces bool) []string {
	var parts []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			cur.WriteByte(s[i+1])
			i++
			continue
		case braces && c == '{':
			depth++
		case braces && c == '}' && depth > 0:
			depth--
		case c == sep && depth == 0:
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(parts, cur.String())
}

func unescape(s string) string {
	return regexp.MustCompile(`\\(.)`).ReplaceAllString(s, "$1")
}

// typedValue types a --set value as helm's strvals does.
func typedValue(v string, asString bool) interface{} {
	if asString {
		return unescape(v)
	}
	switch {
	case strings.EqualFold(v, "true"):
		return true
	case strings.EqualFold(v, "false"):
		return false
	case strings.EqualFold(v, "null"):
		return nil
	case v == "0":
		return int64(0)
	}
	if len(v) > 0 && v[0] != '0' {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return unescape(v)
}

var indexed = regexp.MustCompile(`^(.*?)((?:\[\d+\])+)$`)

// applySet applies one --set expression (k=v[,k=v...]) to vals.
func applySet(vals map[string]interface{}, expr string, asString bool) error {
	for _, assign := range splitUnescaped(expr, ',', true) {
		if assign == "" {
			continue
		}
		kv := splitUnescaped(assign, '=', false)
		if len(kv) < 2 {
			return fmt.Errorf("--set %q: want key=value", assign)
		}
		key, raw := kv[0], strings.Join(kv[1:], "=")
		var val interface{}
		if !asString && strings.HasPrefix(raw, "{") && strings.HasSuffix(raw, "}") {
			list := []interface{}{}
			if inner := raw[1 : len(raw)-1]; inner != "" {
				for _, item := range splitUnescaped(inner, ',', false) {
					list = append(list, typedValue(item, false))
				}
			}
			val = list
		} else {
			val = typedValue(raw, asString)
		}
		if err := setPath(vals, splitUnescaped(key, '.', false), val); err != nil {
			return fmt.Errorf("--set %q: %v", assign, err)
		}
	}
	return nil
}

// setPath sets val at a dotted path whose parts may carry [i] indexes; null deletes.
func setPath(m map[string]interface{}, parts []string, val interface{}) error {
	part := parts[0]
	var idx []int
	if g := indexed.FindStringSubmatch(part); g != nil {
		part = g[1]
		for _, s := range regexp.MustCompile(`\d+`).FindAllString(g[2], -1) {
			n, _ := strconv.Atoi(s)
			if n > 65536 {
				return fmt.Errorf("index %d too large", n)
			}
			idx = append(idx, n)
		}
	}
	part = unescape(part)
	if part == "" {
		return fmt.Errorf("empty key")
	}
	if len(idx) == 0 {
		if len(parts) == 1 {
			if val == nil {
				delete(m, part)
			} else {
				m[part] = val
			}
			return nil
		}
		child, ok := m[part].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
			m[part] = child
		}
		return setPath(child, parts[1:], val)
	}
	// Indexed: walk or grow lists.
	var setIn func(cur interface{}, level int) (interface{}, error)
	setIn = func(cur interface{}, level int) (interface{}, error) {
		list, _ := cur.([]interface{})
		i := idx[level]
		for len(list) <= i {
			list = append(list, nil)
		}
		if level+1 < len(idx) {
			v, err := setIn(list[i], level+1)
			list[i] = v
			return list, err
		}
		if len(parts) == 1 {
			list[i] = val
			return list, nil
		}
		child, ok := list[i].(map[string]interface{})
		if !ok {
			child = map[string]interface{}{}
		}
		list[i] = child
		return list, setPath(child, parts[1:], val)
	}
	v, err := setIn(m[part], 0)
	m[part] = v
	return err
}

// A small JSON-Schema validator for the keywords a values schema needs. Unknown keywords
// are an error, so a schema never silently checks less than it says.
var annotationKeywords = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true,
	"default": true, "examples": true, "deprecated": true, "readOnly": true, "writeOnly": true,
}

func validate(s map[string]interface{}, v interface{}, at string, errs *[]string) {
	fail := func(format string, a ...interface{}) {
		*errs = append(*errs, fmt.Sprintf("%s: %s", at, fmt.Sprintf(format, a...)))
	}
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kw := s[k]
		switch k {
		case "type":
			types := []string{}
			switch t := kw.(type) {
			case string:
				types = append(types, t)
			case []interface{}:
				for _, x := range t {
					types = append(types, fmt.Sprint(x))
				}
			}
			ok := false
			for _, t := range types {
				ok = ok || isType(v, t)
			}
			if !ok {
				fail("got %s, want %s", typeName(v), strings.Join(types, " or "))
				return
			}
		case "properties":
			obj, ok := v.(map[string]interface{})
			if !ok {
				continue
			}
			props, _ := kw.(map[string]interface{})
			for name, ps := range props {
				if pv, present := obj[name]; present {
					validate(ps.(map[string]interface{}), pv, at+"."+name, errs)
				}
			}
		case "additionalProperties":
			obj, ok := v.(map[string]interface{})
			if !ok {
				continue
			}
			props, _ := s["properties"].(map[string]interface{})
			names := make([]string, 0, len(obj))
			for name := range obj {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				if _, declared := props[name]; declared {
					continue
				}
				switch a := kw.(type) {
				case bool:
					if !a {
						fail("additional property %q is not allowed", name)
					}
				case map[string]interface{}:
					validate(a, obj[name], at+"."+name, errs)
				}
			}
		case "required":
			obj, ok := v.(map[string]interface{})
			if !ok {
				continue
			}
			for _, r := range kw.([]interface{}) {
				if _, present := obj[r.(string)]; !present {
					fail("missing property %q", r)
				}
			}
		case "items":
			list, ok := v.([]interface{})
			if !ok {
				continue
			}
			for i, item := range list {
				validate(kw.(map[string]interface{}), item, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		case "enum":
			found := false
			for _, e := range kw.([]interface{}) {
				found = found || equalJSON(e, v)
			}
			if !found {
				fail("%v is not one of %v", v, kw)
			}
		case "const":
			if !equalJSON(kw, v) {
				fail("%v must be %v", v, kw)
			}
		case "minimum", "maximum", "exclusiveMinimum":
			n, ok := number(v)
			if !ok {
				continue
			}
			lim, _ := number(kw)
			if (k == "minimum" && n < lim) || (k == "maximum" && n > lim) || (k == "exclusiveMinimum" && n <= lim) {
				fail("%v violates %s %v", v, k, kw)
			}
		case "minLength", "maxLength":
			str, ok := v.(string)
			if !ok {
				continue
			}
			lim, _ := number(kw)
			if (k == "minLength" && float64(len([]rune(str))) < lim) || (k == "maxLength" && float64(len([]rune(str))) > lim) {
				fail("%q violates %s %v", str, k, kw)
			}
		case "minItems", "maxItems":
			list, ok := v.([]interface{})
			if !ok {
				continue
			}
			lim, _ := number(kw)
			if (k == "minItems" && float64(len(list)) < lim) || (k == "maxItems" && float64(len(list)) > lim) {
				fail("%d items violate %s %v", len(list), k, kw)
			}
		case "uniqueItems":
			list, ok := v.([]interface{})
			if !ok || kw != true {
				continue
			}
			for i := range list {
				for j := i + 1; j < len(list); j++ {
					if equalJSON(list[i], list[j]) {
						fail("items %d and %d are equal", i, j)
					}
				}
			}
		case "pattern":
			str, ok := v.(string)
			if !ok {
				continue
			}
			re, err := regexp.Compile(kw.(string))
			if err != nil {
				fail("bad pattern in schema: %v", err)
			} else if !re.MatchString(str) {
				fail("%q does not match %s", str, kw)
			}
		case "anyOf", "oneOf":
			matched := 0
			for _, sub := range kw.([]interface{}) {
				var subErrs []string
				validate(sub.(map[string]interface{}), v, at, &subErrs)
				if len(subErrs) == 0 {
					matched++
				}
			}
			if matched == 0 || (k == "oneOf" && matched > 1) {
				fail("matches %d of the %s alternatives", matched, k)
			}
		default:
			if !annotationKeywords[k] {
				fail("schema keyword %q is not supported by helm-render", k)
			}
		}
	}
}

func isType(v interface{}, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]interface{})
		return ok
	case "array":
		_, ok := v.([]interface{})
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		_, ok := number(v)
		return ok
	case "integer":
		n, ok := number(v)
		return ok && n == float64(int64(n))
	}
	return false
}

func typeName(v interface{}) string {
	for _, t := range []string{"null", "boolean", "integer", "number", "string", "array", "object"} {
		if isType(v, t) {
			return t
		}
	}
	return fmt.Sprintf("%T", v)
}

func number(v interface{}) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func equalJSON(a, b interface{}) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if na, ok := number(a); ok {
		if nb, ok := number(b); ok {
			return na == nb
		}
	}
	return bytes.Equal(ja, jb)
}

// ---------------------------------------------------------------------------------------
// Templates

type apiVersions []string

// Has reports whether the cluster serves an API version ("group/version" or
// "group/version/Kind"). Without --api-versions it knows only the built-in APIs, so
// monitoring.coreos.com is absent, as with `helm template`.
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

var builtinAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2", "rbac.authorization.k8s.io/v1",
	"networking.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1", "apiextensions.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "storage.k8s.io/v1", "scheduling.k8s.io/v1",
	"apps/v1/Deployment", "v1/Service", "v1/ServiceAccount", "networking.k8s.io/v1/NetworkPolicy",
}

func toYAML(v interface{}) string {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	enc.Close()
	return strings.TrimSuffix(buf.String(), "\n")
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
		return []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

type renderer struct {
	root     *template.Template
	includes int
}

func (r *renderer) funcs() template.FuncMap {
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
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(apiVersion, kind, namespace, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		r.includes++
		defer func() { r.includes-- }()
		if r.includes > 1000 {
			return "", fmt.Errorf("include %q: nested too deeply", name)
		}
		var buf bytes.Buffer
		if err := r.root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := r.root.Clone()
		if err != nil {
			return "", err
		}
		if _, err := t.New("tpl").Parse(text); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "tpl", data); err != nil {
			return "", fmt.Errorf("tpl: %v", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	return f
}

// helm's install order: manifests are printed sorted by kind, stable otherwise.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
	"PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
	"PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
	"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
}

type manifest struct {
	source, kind, content string
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*(?:#.*)?$`)

// splitDocs splits a rendered file into its YAML documents, dropping those with nothing
// but whitespace and comments.
func splitDocs(source, text string) ([]manifest, error) {
	var out []manifest
	for _, d := range docSeparator.Split(text, -1) {
		empty := true
		for _, line := range strings.Split(d, "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if empty {
			continue
		}
		var head struct {
			Kind string `yaml:"kind"`
		}
		if err := yaml.Unmarshal([]byte(d), &head); err != nil {
			return nil, fmt.Errorf("YAML parse error on %s: %v\n%s", source, err, numbered(d))
		}
		if head.Kind == "" {
			return nil, fmt.Errorf("%s: a document has no kind", source)
		}
		out = append(out, manifest{source: source, kind: head.Kind, content: strings.Trim(d, "\n")})
	}
	return out, nil
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		fmt.Fprintf(&b, "%4d | %s\n", i+1, l)
	}
	return b.String()
}

func kindRank(kind string) int {
	for i, k := range installOrder {
		if k == kind {
			return i
		}
	}
	return len(installOrder)
}

func run(o *options) (string, error) {
	chart, err := loadChart(o.chartDir)
	if err != nil {
		return "", err
	}
	name := chart["Name"].(string)

	values := map[string]interface{}{}
	if _, err := os.Stat(filepath.Join(o.chartDir, "values.yaml")); err == nil {
		if values, err = readValuesFile(filepath.Join(o.chartDir, "values.yaml")); err != nil {
			return "", err
		}
	}
	for _, f := range o.valueFiles {
		m, err := readValuesFile(f)
		if err != nil {
			return "", err
		}
		values = merge(values, m)
	}
	for _, s := range o.sets {
		if err := applySet(values, s.expr, s.asString); err != nil {
			return "", err
		}
	}
	if raw, err := os.ReadFile(filepath.Join(o.chartDir, "values.schema.json")); err == nil {
		var schema map[string]interface{}
		if err := json.Unmarshal(raw, &schema); err != nil {
			return "", fmt.Errorf("values.schema.json: %v", err)
		}
		var errs []string
		validate(schema, values, "values", &errs)
		if len(errs) > 0 {
			return "", fmt.Errorf("values don't meet the specifications of the schema(s) in the following chart(s):\n%s:\n- %s", name, strings.Join(errs, "\n- "))
		}
	}

	kubeVersion := strings.TrimPrefix(o.kubeVersion, "v")
	kv := strings.SplitN(kubeVersion, ".", 3)
	for len(kv) < 2 {
		kv = append(kv, "0")
	}
	capabilities := map[string]interface{}{
		"APIVersions": apiVersions(append(append([]string{}, builtinAPIVersions...), o.apiVersions...)),
		"KubeVersion": map[string]interface{}{
			"Version": "v" + kubeVersion, "GitVersion": "v" + kubeVersion, "Major": kv[0], "Minor": kv[1],
		},
		"HelmVersion": map[string]interface{}{"Version": "v3.16.0"},
	}
	release := map[string]interface{}{
		"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}

	// Parse every template (partials included) into one set, as helm does.
	r := &renderer{}
	r.root = template.New("gotpl").Option("missingkey=zero").Funcs(r.funcs())
	tdir := filepath.Join(o.chartDir, "templates")
	var files []string
	err = filepath.WalkDir(tdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	names := map[string]string{}
	for _, p := range files {
		rel, _ := filepath.Rel(o.chartDir, p)
		tname := path.Join(name, filepath.ToSlash(rel))
		raw, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if _, err := r.root.New(tname).Parse(string(raw)); err != nil {
			return "", fmt.Errorf("parse error in %s", strings.TrimPrefix(err.Error(), "template: "))
		}
		names[p] = tname
	}

	execute := func(tname string) (string, error) {
		data := map[string]interface{}{
			"Values": values, "Release": release, "Chart": chart, "Capabilities": capabilities,
			"Template": map[string]interface{}{"Name": tname, "BasePath": path.Join(name, "templates")},
		}
		var buf bytes.Buffer
		if err := r.root.ExecuteTemplate(&buf, tname, data); err != nil {
			return "", fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "template: "))
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}

	if o.notes {
		tname := path.Join(name, "templates", "NOTES.txt")
		if r.root.Lookup(tname) == nil {
			return "", fmt.Errorf("%s not found", tname)
		}
		return execute(tname)
	}

	var manifests []manifest
	for _, p := range files {
		base := filepath.Base(p)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" {
			continue
		}
		text, err := execute(names[p])
		if err != nil {
			return "", err
		}
		docs, err := splitDocs(names[p], text)
		if err != nil {
			return "", err
		}
		manifests = append(manifests, docs...)
	}
	sort.SliceStable(manifests, func(i, j int) bool {
		ri, rj := kindRank(manifests[i].kind), kindRank(manifests[j].kind)
		if ri != rj {
			return ri < rj
		}
		if ri == len(installOrder) {
			return manifests[i].kind < manifests[j].kind
		}
		return false
	})

	var out strings.Builder
	if o.includeCRDs {
		crds, _ := filepath.Glob(filepath.Join(o.chartDir, "crds", "*"))
		sort.Strings(crds)
		for _, p := range crds {
			if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" && ext != ".json" {
				continue
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return "", err
			}
			source := path.Join(name, "crds", filepath.Base(p))
			docs, err := splitDocs(source, string(raw))
			if err != nil {
				return "", err
			}
			for _, d := range docs {
				fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", d.source, d.content)
			}
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.source, m.content)
	}
	return out.String(), nil
}
