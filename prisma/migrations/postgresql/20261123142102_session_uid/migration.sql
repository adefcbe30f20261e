-- AlterTable
ALTER TABLE "OidcPayload" ADD COLUMN     "sessionUid" TEXT;
