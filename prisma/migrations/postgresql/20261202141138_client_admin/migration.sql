-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "admin" BOOLEAN NOT NULL DEFAULT false;
