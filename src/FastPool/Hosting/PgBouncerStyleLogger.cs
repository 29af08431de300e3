using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace FastPool.Hosting;

/// <summary>
/// Log lines in PgBouncer's shape ("2026-01-01 12:00:00.000 UTC [pid] LOG message") to stderr or to logfile.
/// Lines go through a queue to one writer thread, so a session never waits on the disk. The writer wakes at
/// most every <see cref="BatchDelay"/> and writes what gathered in one go: with pgbench -C, three lines per
/// connection woke a thread-pool writer for each line, which cost more CPU than the proxying.
/// </summary>
internal sealed class PgBouncerStyleLoggerProvider : ILoggerProvider
{
    private const int MaxQueued = 65536;
    private static readonly TimeSpan BatchDelay = TimeSpan.FromMilliseconds(20);

    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private TextWriter _writer;

    // With a logfile, lines also go to stderr when someone reads it live: a terminal, or systemd's journal (which sets
    // JOURNAL_STREAM for the services whose output it collects), so journalctl shows them, as with PgBouncer in the
    // foreground. Not when stderr is redirected elsewhere (a daemon's /dev/null, a benchmark's file).
    private readonly TextWriter? _echo;
    private readonly bool _ownsWriter;
    private FileStream? _file;
    private readonly string? _path;

    // Set by Reopen, taken by the writer thread (the only one that touches the writer).
    private int _reopen;
    private readonly LogLevel _minimum;
    private readonly Thread _thread;
    private readonly string _pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
    private int _queued;
    private int _sleeping;
    private volatile bool _stopping;

    public PgBouncerStyleLoggerProvider(string? logFile, LogLevel minimum)
    {
        _minimum = minimum;
        if (string.IsNullOrEmpty(logFile))
        {
            _writer = Console.Error;
        }
        else
        {
            _path = logFile;
            _file = Open(logFile);
            _writer = new StreamWriter(_file, new UTF8Encoding(false)) { AutoFlush = false };
            _ownsWriter = true;
            if (!Console.IsErrorRedirected || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("JOURNAL_STREAM")))
            {
                _echo = Console.Error;
            }
        }

        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "fastpool-log" };
        _thread.Start();
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    private static FileStream Open(string path) => new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);

    /// <summary>
    /// Opens the log file again by its name, as PgBouncer does on SIGHUP and RELOAD: after logrotate moved it away,
    /// lines go to the new file instead of the renamed one. Done by the writer thread before its next batch.
    /// </summary>
    public void Reopen()
    {
        if (_path is not null)
        {
            Volatile.Write(ref _reopen, 1);
            _wake.Set();
        }
    }

    private void ReopenIfAsked()
    {
        if (Interlocked.Exchange(ref _reopen, 0) == 0)
        {
            return;
        }

        FileStream file;
        try
        {
            file = Open(_path!);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The old file stays in use; the line says why the new one could not be opened.
            var sb = new StringBuilder(128);
            AppendTimestamp(sb, DateTime.UtcNow);
            sb.Append(" UTC [").Append(_pid).Append("] WARNING could not reopen log file ").Append(_path).Append(": ").Append(StartupErrors.Describe(ex));
            WriteQuietly(sb.ToString());
            return;
        }

        FlushQuietly();
        _writer.Dispose();
        _file = file;
        _writer = new StreamWriter(file, new UTF8Encoding(false)) { AutoFlush = false };
    }

    private void Write(LogLevel level, string message, Exception? exception)
    {
        var sb = new StringBuilder(64 + message.Length);
        AppendTimestamp(sb, DateTime.UtcNow);
        sb.Append(" UTC [").Append(_pid).Append("] ")
            .Append(level switch
            {
                LogLevel.Critical => "FATAL",
                LogLevel.Error => "ERROR",
                LogLevel.Warning => "WARNING",
                LogLevel.Information => "LOG",
                _ => "DEBUG",
            }).Append(' ').Append(message);
        if (exception is not null && level >= LogLevel.Error)
        {
            sb.Append('\n').Append(exception);
        }

        if (Interlocked.Increment(ref _queued) > MaxQueued)
        {
            // A disk that cannot keep up loses log lines, never proxy throughput.
            Interlocked.Decrement(ref _queued);
            return;
        }

        _lines.Enqueue(sb.ToString());
        if (Volatile.Read(ref _sleeping) != 0 && Interlocked.Exchange(ref _sleeping, 0) != 0)
        {
            _wake.Set();
        }
    }

    /// <summary>
    /// yyyy-MM-dd HH:mm:ss.fff, written digit by digit: a connection logs a line when it comes and one when it goes,
    /// and DateTime's custom-format parser was a visible share of a new connection's CPU.
    /// </summary>
    internal static void AppendTimestamp(StringBuilder sb, DateTime t)
    {
        Span<char> c = stackalloc char[23];
        Digits(c[..4], t.Year);
        c[4] = '-';
        Digits(c.Slice(5, 2), t.Month);
        c[7] = '-';
        Digits(c.Slice(8, 2), t.Day);
        c[10] = ' ';
        Digits(c.Slice(11, 2), t.Hour);
        c[13] = ':';
        Digits(c.Slice(14, 2), t.Minute);
        c[16] = ':';
        Digits(c.Slice(17, 2), t.Second);
        c[19] = '.';
        Digits(c.Slice(20, 3), t.Millisecond);
        sb.Append(c);

        static void Digits(Span<char> into, int value)
        {
            for (int i = into.Length - 1; i >= 0; i--)
            {
                into[i] = (char)('0' + (value % 10));
                value /= 10;
            }
        }
    }

    private void SeekToEndQuietly()
    {
        try
        {
            _file?.Seek(0, SeekOrigin.End);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Nothing to do about a log file that went away; the writes report nothing either.
        }
    }

    private void WriteLoop()
    {
        while (true)
        {
            // FileMode.Append only seeks to the end once, at open (.NET does not open with O_APPEND): another
            // process writing the same logfile (the successor in a rolling restart) would have its lines
            // overwritten. Each batch starts at the end as it is now; the writer's buffer is empty here.
            ReopenIfAsked();
            SeekToEndQuietly();
            bool wrote = false;
            while (_lines.TryDequeue(out var line))
            {
                Interlocked.Decrement(ref _queued);
                WriteQuietly(line);
                wrote = true;
            }

            if (wrote)
            {
                FlushQuietly();
            }

            if (_stopping)
            {
                return;
            }

            // Sleep until a line comes (the writer of that line sets the event), then gather for a moment.
            _wake.Reset();
            Volatile.Write(ref _sleeping, 1);
            if (_lines.IsEmpty && !_stopping)
            {
                _wake.Wait(TimeSpan.FromSeconds(1));
            }

            Volatile.Write(ref _sleeping, 0);
            if (!_stopping)
            {
                Thread.Sleep(BatchDelay);
            }
        }
    }

    private void WriteQuietly(string line)
    {
        try
        {
            _writer.WriteLine(line);
            _echo?.WriteLine(line);
        }
        catch (IOException)
        {
            // A full disk or a closed stderr must not stop the proxy; the line is lost.
        }
    }

    private void FlushQuietly()
    {
        try
        {
            _writer.Flush();
            _echo?.Flush();
        }
        catch (IOException)
        {
            // As above.
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        _thread.Join(TimeSpan.FromSeconds(2));
        if (_ownsWriter)
        {
            _writer.Dispose();
        }

        _wake.Dispose();
    }

    private sealed class Logger(PgBouncerStyleLoggerProvider provider) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= provider._minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                provider.Write(logLevel, formatter(state, exception), exception);
            }
        }
    }
}
