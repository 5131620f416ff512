/**
 * .gitignore rules as `deno deploy` applies them when it lists the files to
 * upload (its file collector reads every .gitignore it walks past): blank
 * lines and `#` comments skipped, `!` re-includes, a trailing `/` matches
 * folders only, a `/` elsewhere anchors the pattern to the .gitignore's folder,
 * `*`, `?`, `[...]` and `**` as git reads them. The last matching rule wins,
 * deeper files after shallower ones.
 *
 * @module
 */

/** One rule of a .gitignore, compiled. */
export interface IgnoreRule {
  /** The folder of its .gitignore, from the root ("" or "a/b/"). */
  base: string;
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
}

/** A glob (gitignore dialect) as a regular expression over `/`-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*") {
      if (glob[i + 1] === "*") {
        const slashAfter = glob[i + 2] === "/";
        const atStart = i === 0 || glob[i - 1] === "/";
        if (atStart && slashAfter) { // "**/": any number of folders, none included
          re += "(?:.*/)?";
          i += 2;
        } else { // "/**" at the end, or "**" in a name: anything
          re += ".*";
          i += 1;
        }
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else if (c === "\\" && i + 1 < glob.length) re += escape(glob[++i]);
    else re += escape(c);
  }
  return new RegExp(`^${re}$`);
}

const escape = (c: string) => /[.+^${}()|\\\]\[]/.test(c) ? `\\${c}` : c;

/** The rules of one .gitignore, found in folder `base` ("" for the root, else "a/b/"). */
export function parseGitignore(text: string, base: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (let line of text.split(/\r?\n/)) {
    if (line === "" || line.startsWith("#")) continue;
    line = line.replace(/(?<!\\)\s+$/, "");
    if (line === "") continue;
    let negate = false;
    if (line.startsWith("!")) [negate, line] = [true, line.slice(1)];
    else if (line.startsWith("\\!") || line.startsWith("\\#")) line = line.slice(1);
    const dirOnly = line.endsWith("/");
    if (dirOnly) line = line.slice(0, -1);
    // A slash at the start or in the middle anchors the pattern to its .gitignore's folder.
    const anchored = line.includes("/");
    if (line.startsWith("/")) line = line.slice(1);
    const glob = anchored ? line : `**/${line}`;
    rules.push({ base, negate, dirOnly, regex: globToRegExp(glob) });
  }
  return rules;
}

/**
 * Whether `path` (from the root, `/`-separated, no trailing slash) is ignored by
 * `rules` (in file order, shallower .gitignores first).
 */
export function isIgnored(rules: readonly IgnoreRule[], path: string, isDir: boolean): boolean {
  let ignored = false;
  for (const rule of rules) {
    if (rule.dirOnly && !isDir) continue;
    if (!path.startsWith(rule.base)) continue;
    if (rule.regex.test(path.slice(rule.base.length))) ignored = !rule.negate;
  }
  return ignored;
}
