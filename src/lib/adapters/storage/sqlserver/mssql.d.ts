// mssql@12 ships no type declarations and @types/mssql is not among the project's dev dependencies yet.
// This ambient declaration covers only the surface connection.ts uses. When @types/mssql@^12 is added,
// delete this file: the names below follow @types/mssql, so the adapter compiles against either.
declare module 'mssql' {
  import type { EventEmitter } from 'node:events'

  namespace sql {
    /** A type factory (sql.Int); calling the sized ones (sql.NVarChar(sql.MAX)) gives an ISqlType. */
    interface ISqlTypeFactory {
      readonly declaration: string
    }
    interface ISqlTypeFactoryWithNoParams extends ISqlTypeFactory {
      (): ISqlType
    }
    interface ISqlTypeFactoryWithLength extends ISqlTypeFactory {
      (length?: number): ISqlType
    }
    interface ISqlTypeWithLength {
      type: ISqlTypeFactoryWithLength
      length: number
    }
    type ISqlType = ISqlTypeWithLength | { type: ISqlTypeFactory }

    interface IColumn {
      index: number
      name: string
      length: number
      type: ISqlTypeFactory | undefined
      nullable: boolean
    }
    interface IColumnMetadata {
      [name: string]: IColumn
    }
    interface IRecordSet<T> extends Array<T> {
      columns: IColumnMetadata
    }
    interface IResult<T> {
      recordsets: Array<IRecordSet<T>>
      recordset: IRecordSet<T> | undefined
      rowsAffected: number[]
      output: Record<string, unknown>
    }

    interface IRequestParameter {
      name: string
      type: ISqlTypeFactory
      io: number
      value: unknown
      length: number | undefined
      scale: number | undefined
      precision: number | undefined
    }

    interface IPool {
      min?: number
      max?: number
      idleTimeoutMillis?: number
    }
    interface IOptions {
      encrypt?: boolean
      trustServerCertificate?: boolean
      instanceName?: string
      appName?: string
      useUTC?: boolean
      enableArithAbort?: boolean
    }
    interface config {
      server: string
      port?: number
      user?: string
      password?: string
      database?: string
      connectionTimeout?: number
      requestTimeout?: number
      pool?: IPool
      options?: IOptions
    }

    class MSSQLError extends Error {
      code: string
      originalError?: unknown
    }
    class ConnectionError extends MSSQLError {}
    class TransactionError extends MSSQLError {}
    class RequestError extends MSSQLError {
      number?: number
      state?: number
      class?: number
      lineNumber?: number
      precedingErrors?: unknown[]
    }

    class ConnectionPool extends EventEmitter {
      constructor(config: config)
      readonly config: config
      readonly connected: boolean
      readonly connecting: boolean
      connect(): Promise<ConnectionPool>
      close(): Promise<void>
      request(): Request
    }

    class Transaction extends EventEmitter {
      constructor(pool?: ConnectionPool)
      begin(isolationLevel?: number): Promise<Transaction>
      commit(): Promise<void>
      rollback(): Promise<void>
      request(): Request
    }

    class Request extends EventEmitter {
      constructor(parent?: ConnectionPool | Transaction)
      parameters: Record<string, IRequestParameter>
      input(name: string, type: ISqlTypeFactory | ISqlType, value?: unknown): Request
      query<T = Record<string, unknown>>(command: string): Promise<IResult<T>>
      batch<T = Record<string, unknown>>(command: string): Promise<IResult<T>>
    }

    const MAX: number
    const Int: ISqlTypeFactoryWithNoParams
    const BigInt: ISqlTypeFactoryWithNoParams
    const Float: ISqlTypeFactoryWithNoParams
    const Bit: ISqlTypeFactoryWithNoParams
    const NVarChar: ISqlTypeFactoryWithLength
    const VarBinary: ISqlTypeFactoryWithLength
    const DateTime2: ISqlTypeFactory & ((scale?: number) => ISqlType)
  }

  export = sql
}
