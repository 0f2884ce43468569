/** The storage engines (DESIGN §2). Its own module: the migrator and storage ports both name it. */
export type Engine = 'sqlite' | 'postgres' | 'sqlserver'
