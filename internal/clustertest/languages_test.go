package clustertest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// program is one language's set of test programs.
type program struct {
	lang string
	// hello prints "hello".
	hello string
	// echo prints its arguments separated by spaces, a newline, then the
	// first line of stdin.
	echo string
	// exit3 exits with status 3 after printing "bye".
	exit3 string
	// crash dies at run time (exception, abort, …).
	crash string
	// spin loops forever.
	spin string
	// broken does not compile (compiled languages only).
	broken string
}

var programs = []program{
	{
		lang:   "python",
		hello:  `print("hello")`,
		echo:   "import sys\nprint(' '.join(sys.argv[1:]))\nprint(input())",
		exit3:  "import sys\nprint('bye')\nsys.exit(3)",
		crash:  "raise ValueError('boom')",
		spin:   "while True: pass",
		broken: "",
	},
	{
		lang:   "c",
		hello:  "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}",
		echo:   "#include <stdio.h>\nint main(int c,char**v){for(int i=1;i<c;i++)printf(i>1?\" %s\":\"%s\",v[i]);char b[256];printf(\"\\n%s\",fgets(b,256,stdin));return 0;}",
		exit3:  "#include <stdio.h>\nint main(void){puts(\"bye\");return 3;}",
		crash:  "#include <stdlib.h>\nint main(void){abort();}",
		spin:   "int main(void){volatile int x=0;for(;;)x++;}",
		broken: "int main(void){ return 0 }",
	},
	{
		lang:   "cpp",
		hello:  "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}",
		echo:   "#include <iostream>\n#include <string>\nint main(int c,char**v){for(int i=1;i<c;i++)std::cout<<(i>1?\" \":\"\")<<v[i];std::string s;std::getline(std::cin,s);std::cout<<\"\\n\"<<s<<\"\\n\";}",
		exit3:  "#include <iostream>\nint main(){std::cout<<\"bye\\n\";return 3;}",
		crash:  "#include <stdexcept>\nint main(){throw std::runtime_error(\"boom\");}",
		spin:   "int main(){volatile int x=0;for(;;)x++;}",
		broken: "int main(){ undeclared(); }",
	},
	{
		lang:   "java",
		hello:  "public class Hello { public static void main(String[] a) { System.out.println(\"hello\"); } }",
		echo:   "import java.util.*;\npublic class Echo { public static void main(String[] a) { System.out.println(String.join(\" \", a)); System.out.println(new Scanner(System.in).nextLine()); } }",
		exit3:  "public class Main { public static void main(String[] a) { System.out.println(\"bye\"); System.exit(3); } }",
		crash:  "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }",
		spin:   "public class Main { public static void main(String[] a) { long x = 0; while (true) { x++; } } }",
		broken: "public class Main { public static void main(String[] a) { int x = \"no\"; } }",
	},
	{
		lang:  "javascript",
		hello: `console.log("hello")`,
		echo:  "const l = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\nconsole.log(process.argv.slice(2).join(' '));\nconsole.log(l);",
		exit3: "console.log('bye'); process.exit(3);",
		crash: "throw new Error('boom');",
		spin:  "for (;;) {}",
	},
	{
		lang:   "go",
		hello:  "package main\nimport \"fmt\"\nfunc main(){ fmt.Println(\"hello\") }",
		echo:   "package main\nimport (\"bufio\";\"fmt\";\"os\";\"strings\")\nfunc main(){ fmt.Println(strings.Join(os.Args[1:], \" \")); s, _ := bufio.NewReader(os.Stdin).ReadString('\\n'); fmt.Println(strings.TrimSpace(s)) }",
		exit3:  "package main\nimport (\"fmt\";\"os\")\nfunc main(){ fmt.Println(\"bye\"); os.Exit(3) }",
		crash:  "package main\nfunc main(){ panic(\"boom\") }",
		spin:   "package main\nfunc main(){ for {} }",
		broken: "package main\nfunc main(){ x := 1 }",
	},
	{
		lang:   "rust",
		hello:  "fn main(){ println!(\"hello\"); }",
		echo:   "use std::io::BufRead;\nfn main(){ let a: Vec<String> = std::env::args().skip(1).collect(); println!(\"{}\", a.join(\" \")); let mut s = String::new(); std::io::stdin().lock().read_line(&mut s).unwrap(); println!(\"{}\", s.trim_end()); }",
		exit3:  "fn main(){ println!(\"bye\"); std::process::exit(3); }",
		crash:  "fn main(){ let v: Vec<i32> = vec![]; println!(\"{}\", v[1]); }",
		spin:   "fn main(){ let mut x: u64 = 0; loop { x = x.wrapping_add(1); std::hint::black_box(x); } }",
		broken: "fn main(){ let x: i32 = \"no\"; }",
	},
	{
		lang:  "bash",
		hello: "echo hello",
		echo:  "echo \"$*\"\nread -r line\necho \"$line\"",
		exit3: "echo bye\nexit 3",
		crash: "kill -SEGV $$",
		spin:  "while :; do :; done",
	},
}

func TestLanguagesEndToEnd(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}}})
	for _, p := range programs {
		t.Run(p.lang, func(t *testing.T) {
			c.WaitLanguage(p.lang)
			run := func(t *testing.T, req api.JobRequest) *api.Job {
				t.Helper()
				req.Language = p.lang
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				job := clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &req, 2*time.Minute))
				if job.Status != api.StatusDone {
					t.Fatalf("status %q (error %q), want done", job.Status, job.Error)
				}
				return job
			}
			t.Run("hello", func(t *testing.T) {
				job := run(t, api.JobRequest{Source: p.hello})
				clustertest.RunOf(t, job)
				if job.Verdict != api.VerdictOK || job.Run.Stdout != "hello\n" {
					t.Fatalf("verdict %q stdout %q compile %+v", job.Verdict, job.Run.Stdout, job.Compile)
				}
				if job.Worker != "w1" || job.Version == "" || job.Attempts != 1 {
					t.Fatalf("worker %q version %q attempts %d", job.Worker, job.Version, job.Attempts)
				}
			})
			t.Run("stdin and args", func(t *testing.T) {
				job := run(t, api.JobRequest{Source: p.echo, Stdin: "from stdin\n", Args: []string{"a", "b c"}})
				clustertest.RunOf(t, job)
				if job.Verdict != api.VerdictOK || job.Run.Stdout != "a b c\nfrom stdin\n" {
					t.Fatalf("verdict %q stdout %q stderr %q", job.Verdict, job.Run.Stdout, job.Run.Stderr)
				}
			})
			t.Run("non-zero exit", func(t *testing.T) {
				job := run(t, api.JobRequest{Source: p.exit3})
				clustertest.RunOf(t, job)
				if job.Verdict != api.VerdictRuntimeError || job.Run.ExitCode != 3 || job.Run.Stdout != "bye\n" {
					t.Fatalf("verdict %q exit %d stdout %q", job.Verdict, job.Run.ExitCode, job.Run.Stdout)
				}
			})
			t.Run("runtime error", func(t *testing.T) {
				job := run(t, api.JobRequest{Source: p.crash})
				clustertest.RunOf(t, job)
				if job.Verdict != api.VerdictRuntimeError || (job.Run.ExitCode == 0 && job.Run.Signal == "") {
					t.Fatalf("verdict %q exit %d signal %q", job.Verdict, job.Run.ExitCode, job.Run.Signal)
				}
			})
			t.Run("time limit", func(t *testing.T) {
				job := run(t, api.JobRequest{Source: p.spin, Limits: api.Limits{CPUMs: 500, WallMs: 2000}})
				if job.Verdict != api.VerdictTimeLimit {
					t.Fatalf("verdict %q, want time_limit (run %+v)", job.Verdict, job.Run)
				}
			})
			if p.broken != "" {
				t.Run("compile error", func(t *testing.T) {
					job := run(t, api.JobRequest{Source: p.broken})
					if job.Verdict != api.VerdictCompileError || job.Compile == nil || job.Compile.ExitCode == 0 || strings.TrimSpace(job.Compile.Stderr+job.Compile.Stdout) == "" {
						t.Fatalf("verdict %q compile %+v", job.Verdict, job.Compile)
					}
					if job.Run != nil {
						t.Fatalf("a program that did not compile must not run: %+v", job.Run)
					}
				})
			}
		})
	}
}
