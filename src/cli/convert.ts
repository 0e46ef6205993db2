// `nesso-mcp convert --quantize|--dequantize IN OUT`: writes an MLX-layout checkpoint that
// mlx-lm and this engine load, quantized with MLX affine quantization or dequantized to float.

import { convertCheckpoint, type ConvertMode } from "../convert/convert.js";
import { floatDtypes, type FloatDtype } from "../convert/float-dtype.js";
import { affineBits, affineGroupSizes } from "../engine/quantization.js";
import { commonOptions, commonOptionsHelp, integerOption, parseCommand } from "./options.js";
import { UsageError } from "./report-error.js";

const help = `Usage: nesso-mcp convert (--quantize | --dequantize) [options] IN OUT

Converts the checkpoint directory IN into OUT with the tensor names, packing and config.json
"quantization" block of mlx_lm.convert, and copies the tokenizer files and chat template.

  --quantize            Quantize every linear and embedding weight whose input size is a
                        multiple of the group size (MLX affine; norms stay float)
  --bits B              Bits per weight: ${affineBits.join(", ")} (default 4)
  --group-size G        Weights per scale and bias: ${affineGroupSizes.join(", ")} (default 64)
  --dequantize          Turn a quantized checkpoint back into float weights
  --dtype T             dtype of the dequantized weights: ${floatDtypes.join(", ")} (default F32)
  --force               Replace OUT when it is not empty
${commonOptionsHelp}
`;

export async function convertCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    "convert",
    argv,
    {
      ...commonOptions,
      quantize: { type: "boolean" },
      dequantize: { type: "boolean" },
      bits: { type: "string" },
      "group-size": { type: "string" },
      dtype: { type: "string" },
      force: { type: "boolean" },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(help);
    return 0;
  }
  if (values.quantize === values.dequantize) throw new UsageError("convert needs exactly one of --quantize and --dequantize (see nesso-mcp convert --help)");
  if (positionals.length !== 2) throw new UsageError(`convert needs the input and output directories, got ${positionals.length} arguments (see nesso-mcp convert --help)`);
  const [input, output] = positionals;

  let mode: ConvertMode;
  if (values.quantize) {
    if (values.dtype !== undefined) throw new UsageError("--dtype applies to --dequantize only; quantized scales keep the source dtype");
    const bits = integerOption(values.bits, "bits", 2, 8) ?? 4;
    const groupSize = integerOption(values["group-size"], "group-size", 32, 128) ?? 64;
    if (!(affineBits as readonly number[]).includes(bits)) throw new UsageError(`--bits must be one of ${affineBits.join(", ")}, got ${bits}`);
    if (!(affineGroupSizes as readonly number[]).includes(groupSize)) throw new UsageError(`--group-size must be one of ${affineGroupSizes.join(", ")}, got ${groupSize}`);
    mode = { kind: "quantize", bits, groupSize };
  } else {
    if (values.bits !== undefined || values["group-size"] !== undefined) throw new UsageError("--bits and --group-size apply to --quantize only");
    const dtype = (values.dtype ?? "F32").toUpperCase();
    if (!(floatDtypes as readonly string[]).includes(dtype)) throw new UsageError(`--dtype must be one of ${floatDtypes.join(", ")}, got "${values.dtype}"`);
    mode = { kind: "dequantize", dtype: dtype as FloatDtype };
  }

  const abort = new AbortController();
  const onSignal = () => abort.abort(new Error("convert was interrupted; nothing was written to the output"));
  process.once("SIGINT", onSignal);
  try {
    const result = await convertCheckpoint({ source: input, output, mode, force: values.force ?? false, signal: abort.signal });
    const action = mode.kind === "quantize" ? `quantized to ${mode.bits} bits, group size ${mode.groupSize}` : `dequantized to ${mode.dtype}`;
    process.stderr.write(`${result.converted.length} weights ${action}; ${result.keptFloat.length} weights kept in float; ${result.bytes} bytes of weights\n`);
    process.stdout.write(`${output}\n`);
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
  }
}
