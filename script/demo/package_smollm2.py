"""Stage `package-smollm2`: the base SmolLM2 GGUF with Pedigree metadata added.

The tensors are copied unchanged; the metadata records the packaging params and the md5 of the
evaluation prompts, so a change of either gives a new artifact (and a new md5).
"""
import hashlib
import os
import yaml
import gguf

params = yaml.safe_load(open("params.yaml"))["smollm2"]
eval_md5 = hashlib.md5(open("data/eval/prompts.jsonl", "rb").read()).hexdigest()
reader = gguf.GGUFReader("base/smollm2-135m-instruct.gguf")
arch = reader.fields["general.architecture"].contents()

os.makedirs("models/smollm2-135m", exist_ok=True)
writer = gguf.GGUFWriter("models/smollm2-135m/model.gguf", arch)
for name, field in reader.fields.items():
    if name.startswith("GGUF.") or name == "general.architecture":
        continue
    value_type = field.types[0]
    sub_type = field.types[-1] if value_type == gguf.GGUFValueType.ARRAY else None
    writer.add_key_value(name, field.contents(), value_type, sub_type=sub_type)
writer.add_string("pedigree.eval_prompts_md5", eval_md5)
writer.add_float32("pedigree.default_temperature", float(params["temperature"]))
writer.add_uint32("pedigree.serving_context", int(params["context_length"]))
for tensor in reader.tensors:
    writer.add_tensor_info(tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type)
writer.write_header_to_file()
writer.write_kv_data_to_file()
writer.write_ti_data_to_file()
for tensor in reader.tensors:
    writer.write_tensor_data(tensor.data)
writer.close()
print(f"packaged smollm2-135m with context {params['context_length']}")
