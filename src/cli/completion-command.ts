/**
 * `sockwarden completion bash|zsh|fish`: a script for the shell that asks the executable itself
 * for the words that fit (yargs's `--get-yargs-completions`), so it stays right as commands and
 * options change. Each script calls the executable as typed, and sets SHELL for that call because
 * yargs picks its answer's format (plain words, or words with descriptions for zsh and fish) by it.
 */
import type { Argv } from "yargs";
import { stdout } from "./output.ts";
import { UsageError } from "../errors.ts";

export const SHELLS = ["bash", "zsh", "fish"] as const;
export type Shell = (typeof SHELLS)[number];

export interface CompletionArgs {
  shell?: Shell;
}

export function completionBuilder<T>(y: Argv<T>) {
  return y.positional("shell", { type: "string", choices: SHELLS, describe: "The shell to complete in" });
}

export function runCompletion(args: CompletionArgs): Promise<number> {
  if (args.shell === undefined) throw new UsageError(`say which shell: sockwarden completion ${SHELLS.join("|")}`);
  stdout(completionScript(args.shell));
  return Promise.resolve(0);
}

export function completionScript(shell: Shell): string {
  return SCRIPTS[shell];
}

/**
 * What yargs's default completion says, made right for people: the default command is not a
 * word to type, and a one-character option is `-4`, not `--4` (yargs doubles the dash for digits).
 */
export function tidyCompletions(words: readonly string[]): string[] {
  return words
    .filter((w) => !/^\$0(?:[:\t]|$)/.test(w))
    .map((w) => w.replace(/^--([0-9])(?=[:\t]|$)/, "-$1"));
}

const SCRIPTS: Record<Shell, string> = {
  bash: `# sockwarden completion for bash. Install (one of):
#   sockwarden completion bash > ~/.local/share/bash-completion/completions/sockwarden
#   sockwarden completion bash > /etc/bash_completion.d/sockwarden
#   echo 'source <(sockwarden completion bash)' >> ~/.bashrc
_sockwarden_completions()
{
    local cur="\${COMP_WORDS[COMP_CWORD]}" words
    mapfile -t words < <(SHELL=bash "\${COMP_WORDS[0]}" --get-yargs-completions "\${COMP_WORDS[@]:0:COMP_CWORD+1}" 2>/dev/null)
    mapfile -t COMPREPLY < <(compgen -W "\${words[*]}" -- "\$cur")
    return 0
}
complete -o bashdefault -o default -F _sockwarden_completions sockwarden
`,
  zsh: `#compdef sockwarden
# sockwarden completion for zsh. Install: save as _sockwarden in a directory of $fpath, e.g.
#   sockwarden completion zsh > ~/.zfunc/_sockwarden   (with fpath+=(~/.zfunc) before compinit)
# or add to ~/.zshrc after compinit: source <(sockwarden completion zsh)
_sockwarden() {
  local -a reply
  local IFS=$'\\n'
  reply=($(SHELL=zsh "\${words[1]}" --get-yargs-completions "\${(@)words[1,CURRENT]}" 2>/dev/null))
  if (( \${#reply} > 0 )); then
    _describe 'values' reply
  else
    _default
  fi
}
if [[ "\${zsh_eval_context[-1]}" == "loadautofunc" ]]; then
  _sockwarden "$@"
else
  compdef _sockwarden sockwarden
fi
`,
  fish: `# sockwarden completion for fish. Install:
#   sockwarden completion fish > ~/.config/fish/completions/sockwarden.fish
function __sockwarden_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    env SHELL=fish $words[1] --get-yargs-completions $words "$current" 2>/dev/null
end
complete -c sockwarden -f -a '(__sockwarden_complete)'
`,
};
