package runner

import (
	"testing"
	"time"
)

// programs are the same six programs in each language.
type programs struct {
	lang       string
	hello      string // prints "hello\n"
	echo       string // copies stdin to stdout
	args       string // prints its arguments joined by spaces
	compileErr string // does not compile ("" for interpreted languages)
	exit3      string // exits with status 3
	spin       string // loops forever
}

var languages = []programs{
	{
		lang:  "python",
		hello: `print("hello")`,
		echo:  "import sys\nsys.stdout.write(sys.stdin.read())\n",
		args:  "import sys\nprint(' '.join(sys.argv[1:]))\n",
		exit3: "import sys\nsys.exit(3)\n",
		spin:  "while True:\n    pass\n",
	},
	{
		lang:       "c",
		hello:      "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
		echo:       "#include <stdio.h>\nint main(void) { int c; while ((c = getchar()) != EOF) putchar(c); return 0; }\n",
		args:       "#include <stdio.h>\nint main(int argc, char **argv) { for (int i = 1; i < argc; i++) printf(\"%s%s\", argv[i], i < argc-1 ? \" \" : \"\"); puts(\"\"); return 0; }\n",
		compileErr: "int main(void) { return x; }\n",
		exit3:      "int main(void) { return 3; }\n",
		spin:       "int main(void) { volatile unsigned long i = 0; for (;;) i++; }\n",
	},
	{
		lang:       "cpp",
		hello:      "#include <iostream>\nint main() { std::cout << \"hello\" << std::endl; }\n",
		echo:       "#include <iostream>\nint main() { std::cout << std::cin.rdbuf(); }\n",
		args:       "#include <iostream>\nint main(int argc, char **argv) { for (int i = 1; i < argc; i++) std::cout << argv[i] << (i < argc-1 ? \" \" : \"\"); std::cout << \"\\n\"; }\n",
		compileErr: "int main() { return undefined_thing; }\n",
		exit3:      "#include <cstdlib>\nint main() { std::exit(3); }\n",
		spin:       "int main() { volatile unsigned long i = 0; for (;;) i = i + 1; }\n",
	},
	{
		lang:       "java",
		hello:      "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }\n",
		echo:       "public class Main { public static void main(String[] a) throws Exception { System.in.transferTo(System.out); } }\n",
		args:       "public class Main { public static void main(String[] a) { System.out.println(String.join(\" \", a)); } }\n",
		compileErr: "public class Main { public static void main(String[] a) { int x = \"s\" } }\n",
		exit3:      "public class Main { public static void main(String[] a) { System.exit(3); } }\n",
		spin:       "public class Main { static volatile long i; public static void main(String[] a) { for (;;) i++; } }\n",
	},
	{
		lang:  "javascript",
		hello: `console.log("hello")`,
		echo:  "process.stdin.pipe(process.stdout);\n",
		args:  "console.log(process.argv.slice(2).join(' '));\n",
		exit3: "process.exit(3);\n",
		spin:  "for (;;) {}\n",
	},
	{
		lang:       "go",
		hello:      "package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hello\") }\n",
		echo:       "package main\nimport (\"io\"; \"os\")\nfunc main() { io.Copy(os.Stdout, os.Stdin) }\n",
		args:       "package main\nimport (\"fmt\"; \"os\"; \"strings\")\nfunc main() { fmt.Println(strings.Join(os.Args[1:], \" \")) }\n",
		compileErr: "package main\nfunc main() { x := 1 }\n",
		exit3:      "package main\nimport \"os\"\nfunc main() { os.Exit(3) }\n",
		spin:       "package main\nvar i int\nfunc main() { for { i++ } }\n",
	},
	{
		lang:       "rust",
		hello:      "fn main() { println!(\"hello\"); }\n",
		echo:       "fn main() { std::io::copy(&mut std::io::stdin(), &mut std::io::stdout()).unwrap(); }\n",
		args:       "fn main() { println!(\"{}\", std::env::args().skip(1).collect::<Vec<_>>().join(\" \")); }\n",
		compileErr: "fn main() { let x: i32 = \"s\"; }\n",
		exit3:      "fn main() { std::process::exit(3); }\n",
		spin:       "fn main() { let mut i: u64 = 0; loop { i = std::hint::black_box(i + 1); } }\n",
	},
	{
		lang:  "bash",
		hello: "echo hello\n",
		echo:  "cat\n",
		args:  "echo \"$@\"\n",
		exit3: "exit 3\n",
		spin:  "while :; do :; done\n",
	},
}

func TestLanguages(t *testing.T) {
	t.Parallel()
	for _, p := range languages {
		t.Run(p.lang, func(t *testing.T) {
			t.Parallel()
			r := need(t, p.lang)
			t.Run("hello", func(t *testing.T) {
				t.Parallel()
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.hello), Expected: []byte("hello"), HasExpected: true})
				wantVerdict(t, res, VerdictOK)
				if string(res.Run.Stdout) != "hello\n" {
					t.Errorf("stdout %q", res.Run.Stdout)
				}
				if res.Version == "" {
					t.Error("no version")
				}
			})
			t.Run("stdin", func(t *testing.T) {
				t.Parallel()
				in := "a b\n  c\n\nlast"
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.echo), Stdin: []byte(in)})
				wantVerdict(t, res, VerdictOK)
				if string(res.Run.Stdout) != in {
					t.Errorf("stdout %q, want %q", res.Run.Stdout, in)
				}
			})
			t.Run("args", func(t *testing.T) {
				t.Parallel()
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.args), Args: []string{"x", "y z", "-o"}})
				wantVerdict(t, res, VerdictOK)
				if string(res.Run.Stdout) != "x y z -o\n" {
					t.Errorf("stdout %q", res.Run.Stdout)
				}
			})
			t.Run("compile error", func(t *testing.T) {
				if p.compileErr == "" {
					t.Skip("interpreted")
				}
				t.Parallel()
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.compileErr)})
				wantVerdict(t, res, VerdictCompileError)
				if res.Compile.ExitCode == 0 || len(res.Compile.Stdout)+len(res.Compile.Stderr) == 0 || res.Run != nil {
					t.Errorf("compile %+v, run %v", res.Compile, res.Run)
				}
			})
			t.Run("exit 3", func(t *testing.T) {
				t.Parallel()
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.exit3)})
				wantVerdict(t, res, VerdictRuntimeError)
				if res.Run.ExitCode != 3 {
					t.Errorf("exit %d, want 3", res.Run.ExitCode)
				}
			})
			t.Run("time limit", func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				// The wall limit, a backstop for the CPU limit, keeps this short
				// when the CPUs are busy with the other tests.
				res := mustRun(t, r, &Spec{Language: p.lang, Files: src(p.spin), Limits: Limits{CPU: time.Second, Wall: 2 * time.Second}})
				wantVerdict(t, res, VerdictTimeLimit)
				if took := time.Since(start); took > 30*time.Second {
					t.Errorf("took %v", took)
				}
			})
		})
	}
}
