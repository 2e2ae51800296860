/** The command line is wrong: the message says how, `help` shows the usage. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly help: string;
  constructor(message: string, help: string) {
    super(message);
    this.help = help;
  }
}
