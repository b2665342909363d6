using ChatServices.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();

var app = builder.Build();
app.MapDefaultEndpoints();
app.Lifetime.ApplicationStarted.Register(() => app.Services.GetRequiredService<Readiness>().MarkReady());
app.Run();
