/** Flag parsing shared by the CLI's commands: strict, with a readable error and the usage on a bad flag. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** An integer flag in [min, max], or an error message. */
export function intFlag(name: string, text: string | undefined, min: number, max: number): number | string | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isInteger(n) && n >= min && n <= max ? n : `--${name} expects an integer from ${min} to ${max}, got ${JSON.stringify(text)}`;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The flag values, or undefined after printing what was wrong and the usage. */
export function flags<T extends Options>(
  command: string,
  args: string[],
  usage: string,
  options: T,
): ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: false }>>['values'] | undefined {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    console.error(`hbagg ${command}: ${(err as Error).message}\n\n${usage}`);
    return undefined;
  }
}
