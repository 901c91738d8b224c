// Package lkschema holds LinuxKit's rules for image descriptions (the yml
// given to `linuxkit build`) and for a package's org.mobyproject.config
// label, as one Go table, and checks documents against it the way
// `linuxkit build` does: every field has one type, unknown fields are
// refused, each error names the field by its path
// ("services.0.devices.0.mode: Invalid type. Expected: string, given:
// integer").
//
// The table follows the JSON schema in LinuxKit's
// src/cmd/linuxkit/moby/schema.go (validated with gojsonschema, draft 4)
// and the Go types in moby/config.go and pkglib (build.yml). Beyond the
// schema it checks what LinuxKit itself would fail on later: octal modes
// (LinuxKit parses them with base 8), unique service names, and no name or
// image in a label.
package lkschema

// Kind is the JSON type of a field.
type Kind int

// Kinds of values.
const (
	String          Kind = iota
	Integer              // a JSON number with no fraction
	Boolean              // true or false
	StringOrInteger      // either (uid, gid)
	List                 // a JSON array of Elem
	Object               // a JSON object with exactly the listed Fields
	StringMap            // a JSON object with any keys and string values
)

// Type is the type of one value.
type Type struct {
	Kind     Kind
	Elem     *Type   // List
	Fields   []Field // Object, in LinuxKit's order
	Required []string
	Name     string // Object: the schema definition's name, for the docs
	Octal    bool   // String: an octal number such as "0644"
}

// Field is one property of an Object.
type Field struct {
	Name string
	Type *Type
	Note string // what LinuxKit does with it, for the docs
}

// Field returns the named field of an Object type, or nil.
func (t *Type) Field(name string) *Field {
	for i := range t.Fields {
		if t.Fields[i].Name == name {
			return &t.Fields[i]
		}
	}
	return nil
}

func scalar(k Kind) *Type                  { return &Type{Kind: k} }
func listOf(t *Type) *Type                 { return &Type{Kind: List, Elem: t} }
func object(name string, f ...Field) *Type { return &Type{Kind: Object, Name: name, Fields: f} }

var (
	str      = scalar(String)
	integer  = scalar(Integer)
	boolean  = scalar(Boolean)
	strOrInt = scalar(StringOrInteger)
	strs     = listOf(str)
	mapstr   = scalar(StringMap)
	octal    = &Type{Kind: String, Octal: true}
)

// The definitions of LinuxKit's schema.
var (
	idmapping = object("idmapping",
		Field{"hostID", integer, ""},
		Field{"containerID", integer, ""},
		Field{"size", integer, ""},
	)
	mount = object("mount",
		Field{"destination", str, ""},
		Field{"type", str, ""},
		Field{"source", str, ""},
		Field{"options", strs, ""},
		Field{"uidmappings", listOf(idmapping), ""},
		Field{"gidmappings", listOf(idmapping), ""},
	)
	device = object("device",
		Field{"path", str, "device node in the container"},
		Field{"type", str, "`c`, `b`, ...; `path: all` with `type: b` allows every block device"},
		Field{"major", integer, ""},
		Field{"minor", integer, ""},
		Field{"mode", octal, `octal string, e.g. "0644" (parsed with base 8)`},
	)
	devicecgroup = object("devicecgroup",
		Field{"allow", boolean, ""},
		Field{"type", str, ""},
		Field{"major", integer, ""},
		Field{"minor", integer, ""},
		Field{"access", str, ""},
	)
	memory = object("memory",
		Field{"limit", integer, ""},
		Field{"reservation", integer, ""},
		Field{"swap", integer, ""},
		Field{"kernel", integer, ""},
		Field{"kernelTCP", integer, ""},
		Field{"swappiness", integer, ""},
		Field{"disableOOMKiller", boolean, ""},
	)
	cpu = object("cpu",
		Field{"shares", integer, ""},
		Field{"quota", integer, ""},
		Field{"period", integer, ""},
		Field{"realtimeRuntime", integer, ""},
		Field{"realtimePeriod", integer, ""},
		Field{"cpus", str, ""},
		Field{"mems", str, ""},
	)
	pids           = object("pids", Field{"limit", integer, ""})
	weightdevice   = object("weightdevice", Field{"major", integer, ""}, Field{"minor", integer, ""}, Field{"weight", integer, ""}, Field{"leafWeight", integer, ""})
	throttledevice = object("throttledevice", Field{"major", integer, ""}, Field{"minor", integer, ""}, Field{"rate", integer, ""})
	blockio        = object("blockio",
		Field{"weight", integer, ""},
		Field{"leafWeight", integer, ""},
		Field{"weightDevice", listOf(weightdevice), ""},
		Field{"throttleReadBpsDevice", listOf(throttledevice), ""},
		Field{"throttleWriteBpsDevice", listOf(throttledevice), ""},
		Field{"throttleReadIOPSDevice", listOf(throttledevice), ""},
		Field{"throttleWriteIOPSDevice", listOf(throttledevice), ""},
	)
	hugepagelimit     = object("hugepagelimit", Field{"pageSize", integer, ""}, Field{"limit", integer, ""})
	interfacepriority = object("interfacepriority", Field{"name", str, ""}, Field{"priority", integer, ""})
	network           = object("network", Field{"classID", integer, ""}, Field{"priorities", listOf(interfacepriority), ""})
	resources         = object("resources",
		Field{"devices", listOf(devicecgroup), ""},
		Field{"memory", memory, ""},
		Field{"cpu", cpu, ""},
		Field{"pids", pids, ""},
		Field{"blockio", blockio, ""},
		Field{"hugepageLimits", listOf(hugepagelimit), ""},
		Field{"network", network, ""},
	)
	iface = object("interface",
		Field{"name", str, ""},
		Field{"add", str, ""},
		Field{"peer", str, ""},
		Field{"createInRoot", boolean, ""},
	)
	namespaces = object("namespaces",
		Field{"cgroup", str, ""}, Field{"ipc", str, ""}, Field{"mnt", str, ""}, Field{"net", str, ""},
		Field{"pid", str, ""}, Field{"user", str, ""}, Field{"uts", str, ""},
	)
	runtime = object("runtime",
		Field{"cgroups", strs, ""},
		Field{"mounts", listOf(mount), ""},
		Field{"mkdir", strs, ""},
		Field{"interfaces", listOf(iface), ""},
		Field{"bindNS", namespaces, ""},
		Field{"namespace", str, ""},
	)
)

// Image is one onboot, onshutdown or services entry; a label holds the
// same fields but name and image.
var Image = &Type{Kind: Object, Name: "image", Required: []string{"name", "image"}, Fields: []Field{
	{"name", str, "unique among services; the container id"},
	{"image", str, "image reference"},
	{"capabilities", strs, "replaces the label's; `all` for every capability"},
	{"capabilities.add", strs, "added to the label's"},
	{"ambient", strs, ""},
	{"mounts", listOf(mount), ""},
	{"binds", strs, "`src:dst[:opts]`; replaces the label's"},
	{"binds.add", strs, "added to the label's binds"},
	{"devices", listOf(device), "device nodes and their cgroup permission"},
	{"tmpfs", strs, ""},
	{"command", strs, "replaces the image's ENTRYPOINT and CMD"},
	{"env", strs, "replaces the image's environment"},
	{"cwd", str, ""},
	{"net", str, "`host`, `new`, `none` or a path"},
	{"pid", str, ""},
	{"ipc", str, ""},
	{"uts", str, ""},
	{"userns", str, ""},
	{"readonly", boolean, "read-only root filesystem"},
	{"maskedPaths", strs, ""},
	{"readonlyPaths", strs, ""},
	{"uid", strOrInt, ""},
	{"gid", strOrInt, ""},
	{"additionalGids", listOf(strOrInt), ""},
	{"noNewPrivileges", boolean, ""},
	{"hostname", str, ""},
	{"oomScoreAdj", integer, ""},
	{"rootfsPropagation", str, ""},
	{"cgroupsPath", str, ""},
	{"resources", resources, ""},
	{"sysctl", mapstr, ""},
	{"rlimits", strs, ""},
	{"uidMappings", listOf(idmapping), ""},
	{"gidMappings", listOf(idmapping), ""},
	{"annotations", mapstr, ""},
	{"runtime", runtime, "applied by init (mkdir, mounts, interfaces, ...)"},
}}

// File is one "files" entry.
var File = object("file",
	Field{"path", str, ""},
	Field{"directory", boolean, ""},
	Field{"symlink", str, ""},
	Field{"contents", str, ""},
	Field{"source", str, ""},
	Field{"metadata", str, ""},
	Field{"optional", boolean, ""},
	Field{"mode", octal, `octal string, e.g. "0644"`},
	Field{"uid", strOrInt, ""},
	Field{"gid", strOrInt, ""},
)

// Config is a whole image description (the yml of `linuxkit build`).
var Config = object("(root)",
	Field{"kernel", object("kernel",
		Field{"image", str, ""},
		Field{"cmdline", str, ""},
		Field{"binary", str, ""},
		Field{"tar", str, ""},
		Field{"ucode", str, ""},
	), ""},
	Field{"init", strs, "images unpacked into the root filesystem"},
	Field{"onboot", listOf(Image), "run in order, to completion"},
	Field{"onshutdown", listOf(Image), ""},
	Field{"services", listOf(Image), "names unique"},
	Field{"trust", object("trust", Field{"image", strs, ""}, Field{"org", strs, ""}), ""},
	Field{"files", listOf(File), ""},
)

// BuildYML is a package's build.yml as `linuxkit pkg build` reads it
// (pkglib's pkgInfo). LinuxKit ignores keys it does not know; lkpkg
// refuses them, so a misspelt key cannot silently drop settings.
var BuildYML = object("build.yml",
	Field{"image", str, "required"},
	Field{"org", str, ""},
	Field{"dockerfile", str, ""},
	Field{"arches", strs, ""},
	Field{"extra-sources", strs, ""},
	Field{"gitrepo", str, ""},
	Field{"network", boolean, ""},
	Field{"disable-cache", boolean, ""},
	Field{"config", Label, "an `image` without `name` and `image`; becomes the org.mobyproject.config label"},
	Field{"buildArgs", strs, ""},
	Field{"depends", object("depends", Field{"docker-images", object("docker-images",
		Field{"target-dir", str, ""},
		Field{"target", str, ""},
		Field{"from-file", str, ""},
		Field{"list", strs, ""},
	), ""}), ""},
)

// Label is the org.mobyproject.config label: an Image without name and
// image.
var Label = func() *Type {
	t := &Type{Kind: Object, Name: "label"}
	for _, f := range Image.Fields {
		if f.Name != "name" && f.Name != "image" {
			t.Fields = append(t.Fields, f)
		}
	}
	return t
}()
