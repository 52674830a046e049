import { ChessError } from '@chess/core';
import { ggmlTypeName, openGGUF, GGUFValueType, type GGUFFile } from '@chess/gguf';
import { buildLlamaModule, isDType, shapeFromGgmlNe, verify, type Module, type Weight } from '@chess/ir';
import { readLlamaHParams } from './architectures.ts';
import { metaEntryFromGGUF } from './gguf-meta.ts';

/** Source id of the imported file inside the module (`= file(model)` in the text form). */
export const MODEL_SOURCE_ID = 'model';

export interface ImportResult {
  module: Module;
  /** The open source file (tensor data is read lazily from it); close when done. */
  file: GGUFFile;
}

/**
 * Import a GGUF file into the IR: hyperparameters from its metadata, every
 * tensor as a weight referring to its byte range in the file (never copied),
 * every metadata key carried as an opaque typed entry so emit is lossless.
 */
export async function importGGUF(path: string): Promise<ImportResult> {
  const file = await openGGUF(path);
  try {
    return { module: moduleFromGGUF(file), file };
  } catch (error) {
    await file.close();
    throw error;
  }
}

export function moduleFromGGUF(file: GGUFFile): Module {
  const { metadata } = file;
  const arch = metadata.getString('general.architecture');
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const nVocab = tokens && tokens.type === GGUFValueType.ARRAY ? tokens.items.length : 0;
  const hparams = readLlamaHParams(arch, metadata, nVocab);

  const weights: Weight[] = file.tensors.map((tensor) => {
    const dtype = ggmlTypeName(tensor.type);
    if (!isDType(dtype)) {
      throw new ChessError('IMPORT_UNSUPPORTED_TENSOR_TYPE', `${file.path}: tensor '${tensor.name}' has type ${dtype}, which the IR does not know`, {
        path: file.path,
        tensor: tensor.name,
        type: dtype,
      });
    }
    return {
      name: tensor.name,
      dtype,
      shape: shapeFromGgmlNe(tensor.shape),
      source: { kind: 'file', file: MODEL_SOURCE_ID, offset: tensor.fileOffset, byteLength: tensor.byteLength },
    };
  });

  const module = buildLlamaModule(hparams, { tensors: weights });
  module.addSource(MODEL_SOURCE_ID, file.path);
  module.meta = [...metadata].map(([key, value]) => metaEntryFromGGUF(key, value));
  verify(module);
  return module;
}
