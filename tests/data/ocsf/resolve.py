"""Resolves OCSF's Detection Finding class (and every object it reaches) from the schema
repository at a tag: attributes with their type, requirement, enum and whether an array."""
import json, subprocess, sys

REPO, TAG = sys.argv[1], sys.argv[2]

def load(path):
    out = subprocess.run(["git", "-C", REPO, "show", f"refs/tags/{TAG}:{path}"],
                         capture_output=True, check=True).stdout
    return json.loads(out)

dictionary = load("dictionary.json")
dict_attrs = dictionary["attributes"]
types = {k: v.get("type", k) for k, v in dictionary["types"]["attributes"].items()}

def merged_attributes(doc, optional=False):
    attrs = {}
    for inc in doc.get("attributes", {}).get("$include", []):
        inc_doc = load(inc)
        profile = inc.startswith("profiles/")
        for k, v in merged_attributes(inc_doc, optional or profile).items():
            attrs[k] = {**attrs.get(k, {}), **v}
    for k, v in doc.get("attributes", {}).items():
        if k == "$include":
            continue
        v = dict(v)
        if optional:
            v["requirement"] = "optional"
        attrs[k] = {**attrs.get(k, {}), **v}
    return attrs

def resolve(doc, kind):
    attrs = {}
    parent = doc.get("extends")
    if parent:
        path = {"event": {"finding": "events/findings/finding.json", "base_event": "events/base_event.json"},
                "object": None}[kind]
        ppath = path[parent] if kind == "event" else f"objects/{parent}.json"
        attrs = resolve(load(ppath), kind)
    for k, v in merged_attributes(doc).items():
        attrs[k] = {**attrs.get(k, {}), **v}
    return attrs

objects = {}

def describe(attrs):
    out = {}
    for name, a in attrs.items():
        d = dict_attrs.get(name, {})
        t = a.get("type") or d.get("type")
        e = {"type": t, "requirement": a.get("requirement", "optional")}
        if t == "object_t" or t not in types:
            obj = a.get("object_type") or d.get("object_type") or t
            e["object"] = obj
            want_object(obj)
        else:
            e["base"] = types.get(t, t)
        if a.get("is_array", d.get("is_array")):
            e["array"] = True
        enum = a.get("enum") or d.get("enum")
        if enum:
            e["enum"] = sorted(int(k) if k.lstrip("-").isdigit() else k for k in enum)
        out[name] = e
    return out

pending = []
def want_object(name):
    if name and name not in objects and name not in pending:
        pending.append(name)

cls = load("events/findings/detection_finding.json")
category_uid = 2  # findings
class_uid = category_uid * 1000 + cls["uid"]
attributes = describe(resolve(cls, "event"))
# What the framework derives for a class rather than its file says: its category and class ids,
# and the type ids (class_uid * 100 + activity_id).
attributes["category_uid"]["enum"] = [category_uid]
attributes["class_uid"]["enum"] = [class_uid]
attributes["type_uid"]["enum"] = [class_uid * 100 + a for a in attributes["activity_id"]["enum"]]
result = {"ocsf_version": TAG.lstrip("v"), "class": {"name": cls["name"], "uid": class_uid,
          "category_uid": category_uid, "attributes": attributes}}
while pending:
    name = pending.pop()
    objects[name] = None
    try:
        doc = load(f"objects/{name}.json")
    except subprocess.CalledProcessError:
        del objects[name]
        continue
    objects[name] = {"attributes": describe(resolve(doc, "object"))}
result["objects"] = objects
json.dump(result, sys.stdout, separators=(",", ":"), sort_keys=True)
