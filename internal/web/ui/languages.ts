// What the UI knows about each catalogue language: file extensions (to
// guess the language of an opened file, as the CLI does), a sample program,
// and the CodeMirror mode that highlights it. The list of languages itself
// comes from the cluster (/api/v1/languages); a language missing here still
// runs, it just has no sample and no highlighting.
import type { Extension } from '@codemirror/state';

interface Info {
  label: string;
  extensions: string[];
  sample: string;
  mode?: () => Promise<Extension>;
}

// Legacy (stream) modes: shell, Perl and Ruby have no Lezer grammar.
const legacy = async (name: 'shell' | 'perl' | 'ruby'): Promise<Extension> => {
  const { StreamLanguage } = await import('@codemirror/language');
  switch (name) {
    case 'shell': return StreamLanguage.define((await import('@codemirror/legacy-modes/mode/shell')).shell);
    case 'perl': return StreamLanguage.define((await import('@codemirror/legacy-modes/mode/perl')).perl);
    case 'ruby': return StreamLanguage.define((await import('@codemirror/legacy-modes/mode/ruby')).ruby);
  }
};

// Each mode is a dynamic import: esbuild puts it in its own chunk, fetched
// the first time the language is picked.
export const languages: Record<string, Info> = {
  python: {
    label: 'Python',
    extensions: ['.py'],
    mode: async () => (await import('@codemirror/lang-python')).python(),
    sample: `import sys

name = sys.stdin.readline().strip() or "world"
print(f"Hello, {name}!")
for i, arg in enumerate(sys.argv[1:], 1):
    print(f"arg {i}: {arg}")
`,
  },
  c: {
    label: 'C',
    extensions: ['.c', '.h'],
    mode: async () => (await import('@codemirror/lang-cpp')).cpp(),
    sample: `#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    char name[256] = "world";
    if (fgets(name, sizeof name, stdin)) name[strcspn(name, "\\n")] = 0;
    printf("Hello, %s!\\n", name);
    for (int i = 1; i < argc; i++) printf("arg %d: %s\\n", i, argv[i]);
    return 0;
}
`,
  },
  cpp: {
    label: 'C++',
    extensions: ['.cpp', '.cc', '.cxx', '.c++', '.hpp'],
    mode: async () => (await import('@codemirror/lang-cpp')).cpp(),
    sample: `#include <iostream>
#include <string>

int main(int argc, char **argv) {
    std::string name;
    if (!std::getline(std::cin, name) || name.empty()) name = "world";
    std::cout << "Hello, " << name << "!\\n";
    for (int i = 1; i < argc; i++) std::cout << "arg " << i << ": " << argv[i] << "\\n";
}
`,
  },
  java: {
    label: 'Java',
    extensions: ['.java'],
    mode: async () => (await import('@codemirror/lang-java')).java(),
    sample: `import java.util.Scanner;

public class Main {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        String name = in.hasNextLine() ? in.nextLine().trim() : "";
        System.out.println("Hello, " + (name.isEmpty() ? "world" : name) + "!");
        for (int i = 0; i < args.length; i++) System.out.println("arg " + (i + 1) + ": " + args[i]);
    }
}
`,
  },
  javascript: {
    label: 'JavaScript',
    extensions: ['.js', '.mjs', '.cjs'],
    mode: async () => (await import('@codemirror/lang-javascript')).javascript(),
    sample: `const input = require("fs").readFileSync(0, "utf8");
const name = input.split("\\n")[0].trim() || "world";
console.log(\`Hello, \${name}!\`);
process.argv.slice(2).forEach((a, i) => console.log(\`arg \${i + 1}: \${a}\`));
`,
  },
  go: {
    label: 'Go',
    extensions: ['.go'],
    mode: async () => (await import('@codemirror/lang-go')).go(),
    sample: `package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

func main() {
	line, _ := bufio.NewReader(os.Stdin).ReadString('\\n')
	name := strings.TrimSpace(line)
	if name == "" {
		name = "world"
	}
	fmt.Printf("Hello, %s!\\n", name)
	for i, a := range os.Args[1:] {
		fmt.Printf("arg %d: %s\\n", i+1, a)
	}
}
`,
  },
  rust: {
    label: 'Rust',
    extensions: ['.rs'],
    mode: async () => (await import('@codemirror/lang-rust')).rust(),
    sample: `use std::io::BufRead;

fn main() {
    let mut name = String::new();
    std::io::stdin().lock().read_line(&mut name).ok();
    let name = name.trim();
    println!("Hello, {}!", if name.is_empty() { "world" } else { name });
    for (i, a) in std::env::args().skip(1).enumerate() {
        println!("arg {}: {}", i + 1, a);
    }
}
`,
  },
  bash: {
    label: 'Bash',
    extensions: ['.sh', '.bash'],
    mode: () => legacy('shell'),
    sample: `#!/bin/bash
read -r name
echo "Hello, \${name:-world}!"
i=1
for a in "$@"; do echo "arg $i: $a"; i=$((i + 1)); done
`,
  },
  perl: {
    label: 'Perl',
    extensions: ['.pl'],
    mode: () => legacy('perl'),
    sample: `my $name = <STDIN> // "";
chomp $name;
print "Hello, ", ($name eq "" ? "world" : $name), "!\\n";
my $i = 1;
print "arg ", $i++, ": $_\\n" for @ARGV;
`,
  },
  ruby: {
    label: 'Ruby',
    extensions: ['.rb'],
    mode: () => legacy('ruby'),
    sample: `name = ($stdin.gets || "").strip
puts "Hello, #{name.empty? ? "world" : name}!"
ARGV.each_with_index { |a, i| puts "arg #{i + 1}: #{a}" }
`,
  },
};

/** The catalogue language of a file name, from its extension, or "". */
export function languageOfFile(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return '';
  const ext = name.slice(dot).toLowerCase();
  for (const [lang, info] of Object.entries(languages)) {
    if (info.extensions.includes(ext)) return lang;
  }
  return '';
}

export function labelOf(lang: string): string {
  return languages[lang]?.label ?? lang;
}

export function sampleOf(lang: string): string {
  return languages[lang]?.sample ?? '';
}

/** The highlighting extension of a language; empty when it has none. */
export async function modeOf(lang: string): Promise<Extension> {
  const m = languages[lang]?.mode;
  return m ? m() : [];
}
