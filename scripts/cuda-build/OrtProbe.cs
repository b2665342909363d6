// Loads the ONNX Runtime managed API from a build output folder (argument 1) with the native library that the
// build placed there (found through LD_LIBRARY_PATH), prints its versions and execution providers, and fails
// unless the native library offers the provider named in argument 2. Run by scripts/check-cuda-build.sh.
// Not trimmed or AOT-compiled: it loads an assembly it was not built against.
#:property PublishAot=false
using System.Reflection;

var output = args[0];
var required = args[1];
var api = Assembly.LoadFrom(Path.Combine(output, "Microsoft.ML.OnnxRuntime.dll"));
var ortEnv = api.GetType("Microsoft.ML.OnnxRuntime.OrtEnv", throwOnError: true)!;
var env = ortEnv.GetMethod("Instance")!.Invoke(null, null)!;
var native = (string)ortEnv.GetMethod("GetVersionString")!.Invoke(env, null)!;
var providers = (string[])ortEnv.GetMethod("GetAvailableProviders")!.Invoke(env, null)!;
var managed = api.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?";
Console.WriteLine($"managed {managed}, native {native}, providers: {string.Join(", ", providers)}");
if (managed.Split('+')[0] != native)
{
    Console.Error.WriteLine($"the native library ({native}) is not the managed API's version ({managed})");
    return 1;
}
if (!providers.Contains(required))
{
    Console.Error.WriteLine($"{required} is not among the native library's execution providers");
    return 1;
}
return 0;
