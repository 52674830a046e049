// Prints the path of the pristine llama.cpp tree (cloned offline from node-llama-cpp's bundle, cached).
import { ensureLlamaSource } from '../../packages/backend-llamacpp/src/index.ts';

process.stdout.write(`${await ensureLlamaSource((line) => process.stderr.write(`${line}\n`))}\n`);
